"""bureau: a settlement names the pharmacy dispensing it pays for (the trace's key)

Revision ID: bureau_0004
Revises: bureau_0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bureau_0004"
down_revision: str | None = "bureau_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("settlements") as batch:
        batch.add_column(sa.Column("dispensing_id", sa.String(length=24), nullable=True))
    op.create_index("ix_settlements_dispensing_id", "settlements", ["dispensing_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_settlements_dispensing_id", table_name="settlements")
    with op.batch_alter_table("settlements") as batch:
        batch.drop_column("dispensing_id")
