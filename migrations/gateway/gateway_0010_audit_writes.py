"""gateway: audit_writes, the intents and outcomes of mutations named by the audit log

Revision ID: gateway_0010
Revises: gateway_0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0010"
down_revision: str | None = "gateway_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_writes",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("intent", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idx", "intent"),
    )
    op.create_index("ix_audit_writes_intent", "audit_writes", ["intent"])


def downgrade() -> None:
    op.drop_index("ix_audit_writes_intent", table_name="audit_writes")
    op.drop_table("audit_writes")
