"""gateway: audit_index (sub, at) for the alert rules' per-principal windows

Revision ID: gateway_0007
Revises: gateway_0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "gateway_0007"
down_revision: str | None = "gateway_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The volume and probing rules count one principal's rows within a time window; with
    # only (sub) indexed, that read every row the principal ever left.
    op.create_index("ix_audit_index_sub_at", "audit_index", ["sub", "at"])
    # Its prefix serves every lookup by sub alone: one index less to write per event.
    op.drop_index("ix_audit_index_sub", table_name="audit_index")


def downgrade() -> None:
    op.create_index("ix_audit_index_sub", "audit_index", ["sub"])
    op.drop_index("ix_audit_index_sub_at", table_name="audit_index")
