"""gateway: break-glass reasons and the institution's daily slots

Revision ID: gateway_0015
Revises: gateway_0014
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0015"
down_revision: str | None = "gateway_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("break_glass_grants", sa.Column("org_slot", sa.SmallInteger(), nullable=True))
    op.add_column(
        "break_glass_grants", sa.Column("reason_code", sa.String(length=32), nullable=True)
    )
    op.add_column("break_glass_grants", sa.Column("reason_text", sa.LargeBinary(), nullable=True))
    op.create_index(
        "uq_break_glass_org_slot", "break_glass_grants", ["org", "day", "org_slot"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_break_glass_org_slot", table_name="break_glass_grants")
    with op.batch_alter_table("break_glass_grants") as batch:
        batch.drop_column("reason_text")
        batch.drop_column("reason_code")
        batch.drop_column("org_slot")
