"""gateway: the auditors' query index of the audit log, and audit alerts

Revision ID: gateway_0005
Revises: gateway_0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0005"
down_revision: str | None = "gateway_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_index",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=True),
        sa.Column("sub", sa.String(length=255), nullable=True),
        sa.Column("org", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("break_glass", sa.Boolean(), nullable=False),
        sa.Column("field_classes", sa.Text(), nullable=False),
        sa.Column("denied_unrelated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("idx", "at", "person", "sub", "org"):
        op.create_index(f"ix_audit_index_{column}", "audit_index", [column])
    op.create_table(
        "audit_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("sub", sa.String(length=255), nullable=True),
        sa.Column("org", sa.String(length=64), nullable=True),
        sa.Column("person", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("idx", "at", "rule"):
        op.create_index(f"ix_audit_alerts_{column}", "audit_alerts", [column])


def downgrade() -> None:
    op.drop_table("audit_alerts")
    op.drop_table("audit_index")
