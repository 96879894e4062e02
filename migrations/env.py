"""Alembic environment: runs on the connection that ``connectors.sql.migrate`` hands in."""

from __future__ import annotations

from alembic import context

from connectors.sql.models import METADATA_BY_KIND

config = context.config
connection = config.attributes.get("connection")
kind = config.attributes.get("kind")

if connection is None or kind is None:
    raise RuntimeError("run migrations through `medfed db upgrade`, not bare alembic")

if kind == "gateway":
    from security.store import gateway_metadata

    target_metadata = gateway_metadata()
else:
    target_metadata = METADATA_BY_KIND[kind]

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
