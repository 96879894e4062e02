"""Alembic migrations: one branch per source kind (bureau, hospital, pharmacy, platform,
directory), labelled with the kind, so a source database carries only its own branch."""
