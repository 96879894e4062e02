"""Alembic migrations: one branch per source kind (bureau, hospital, pharmacy, platform,
directory) plus ``gateway`` for the gateway's own database, each labelled with its kind, so a
database carries only its own branch."""
