"""gateway: break-glass grants, counted per clinician per day

Revision ID: gateway_0004
Revises: gateway_0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0004"
down_revision: str | None = "gateway_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "break_glass_grants",
        sa.Column("clinician", sa.String(length=255), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("person_ref", sa.String(length=32), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("org", sa.String(length=12), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("clinician", "day", "person_ref"),
        sa.UniqueConstraint("clinician", "day", "slot", name="uq_break_glass_slot"),
    )


def downgrade() -> None:
    op.drop_table("break_glass_grants")
