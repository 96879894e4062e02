"""gateway: audit_alerts derived from the log, with their state

Revision ID: gateway_0014
Revises: gateway_0013
Create Date: 2026-12-01

An alert is now opened by a logged event (its index is the alert's id) and its state is
changed only by logged events, so ``medfed audit verify`` recomputes the table from the log.
The alerts of the old table were written by the rule evaluator alone, with no event behind
them, so nothing could prove them; the table is made anew, empty. Break-glass events logged
before this revision carry no reason and open no alert.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0014"
down_revision: str | None = "gateway_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("audit_alerts")
    op.create_table(
        "audit_alerts",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("sub", sa.String(length=255), nullable=True),
        sa.Column("org", sa.String(length=64), nullable=True),
        sa.Column("person", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("reason_code", sa.String(length=32), nullable=True),
        sa.Column("reason_text", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_idx", sa.BigInteger(), nullable=False),
        sa.Column("changed_by", sa.String(length=255), nullable=True),
        sa.Column("changed_org", sa.String(length=64), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("idx", "at", "rule", "state", "state_idx"):
        op.create_index(f"ix_audit_alerts_{column}", "audit_alerts", [column])


def downgrade() -> None:
    op.drop_table("audit_alerts")
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
