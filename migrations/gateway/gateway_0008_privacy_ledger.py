"""gateway: the privacy ledger (budgets per partner and period, spends with their answers)

Revision ID: gateway_0008
Revises: gateway_0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0008"
down_revision: str | None = "gateway_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "privacy_budgets",
        sa.Column("partner", sa.String(length=80), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("spent_micro", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partner", "period"),
    )
    op.create_table(
        "privacy_spends",
        sa.Column("partner", sa.String(length=80), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("question", sa.String(length=64), nullable=False),
        sa.Column("statistic", sa.String(length=40), nullable=False),
        sa.Column("epsilon_micro", sa.BigInteger(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner", "period", "question"),
    )


def downgrade() -> None:
    op.drop_table("privacy_spends")
    op.drop_table("privacy_budgets")
