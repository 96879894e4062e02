"""pharmacy: the real-name check of a dispensing, and delivery events

Revision ID: pharmacy_0003
Revises: pharmacy_0002
Create Date: 2026-12-01 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "pharmacy_0003"
down_revision: str | None = "pharmacy_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dispensings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cert_type", sa.String(length=2), nullable=True))

    op.create_table(
        "rx_deliveries",
        sa.Column("delivery_id", sa.String(length=28), nullable=False),
        sa.Column("dispensing_id", sa.String(length=24), nullable=False),
        sa.Column("rx_id", sa.String(length=24), nullable=False),
        sa.Column("person_ref", sa.String(length=32), nullable=False),
        sa.Column("pharmacy_code", sa.String(length=12), nullable=False),
        sa.Column("event", sa.String(length=10), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("tracking_no", sa.String(length=40), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_by", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dispensing_id"], ["dispensings.dispensing_id"]),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    with op.batch_alter_table("rx_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rx_deliveries_dispensing_id"), ["dispensing_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rx_deliveries_person_ref"), ["person_ref"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_rx_deliveries_rx_id"), ["rx_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rx_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rx_deliveries_rx_id"))
        batch_op.drop_index(batch_op.f("ix_rx_deliveries_person_ref"))
        batch_op.drop_index(batch_op.f("ix_rx_deliveries_dispensing_id"))
    op.drop_table("rx_deliveries")
    with op.batch_alter_table("dispensings", schema=None) as batch_op:
        batch_op.drop_column("cert_type")
