"""hospital: e-prescriptions, their items and their workflow events

Revision ID: hospital_0003
Revises: hospital_0002
Create Date: 2026-12-01 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "hospital_0003"
down_revision: str | None = "hospital_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "e_prescriptions",
        sa.Column("rx_id", sa.String(length=24), nullable=False),
        sa.Column("mdtrt_id", sa.String(length=24), nullable=False),
        sa.Column("person_ref", sa.String(length=32), nullable=False),
        sa.Column("institution_code", sa.String(length=12), nullable=False),
        sa.Column("doctor_code", sa.String(length=16), nullable=False),
        sa.Column("doctor_signature", sa.String(length=256), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("review_status", sa.String(length=10), nullable=False),
        sa.Column("reviewed_by", sa.String(length=16), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("circulated_to", sa.String(length=12), nullable=True),
        sa.PrimaryKeyConstraint("rx_id"),
    )
    with op.batch_alter_table("e_prescriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_e_prescriptions_circulated_to"), ["circulated_to"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_e_prescriptions_mdtrt_id"), ["mdtrt_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_e_prescriptions_person_ref"), ["person_ref"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_e_prescriptions_status"), ["status"], unique=False)

    op.create_table(
        "e_prescription_items",
        sa.Column("item_id", sa.String(length=28), nullable=False),
        sa.Column("rx_id", sa.String(length=24), nullable=False),
        sa.Column("drug_code", sa.String(length=24), nullable=False),
        sa.Column("drug_name", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("dosage", sa.String(length=64), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["rx_id"], ["e_prescriptions.rx_id"]),
        sa.PrimaryKeyConstraint("item_id"),
    )
    with op.batch_alter_table("e_prescription_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_e_prescription_items_rx_id"), ["rx_id"], unique=False)

    op.create_table(
        "e_prescription_events",
        sa.Column("event_id", sa.String(length=28), nullable=False),
        sa.Column("rx_id", sa.String(length=24), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("actor_org", sa.String(length=12), nullable=False),
        sa.Column("actor_code", sa.String(length=16), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=False),
        sa.Column("signature", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(["rx_id"], ["e_prescriptions.rx_id"]),
        sa.PrimaryKeyConstraint("event_id"),
        sa.UniqueConstraint("rx_id", "seq", name="uq_e_prescription_events_seq"),
    )
    with op.batch_alter_table("e_prescription_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_e_prescription_events_rx_id"), ["rx_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("e_prescription_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_e_prescription_events_rx_id"))
    op.drop_table("e_prescription_events")
    with op.batch_alter_table("e_prescription_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_e_prescription_items_rx_id"))
    op.drop_table("e_prescription_items")
    with op.batch_alter_table("e_prescriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_e_prescriptions_status"))
        batch_op.drop_index(batch_op.f("ix_e_prescriptions_person_ref"))
        batch_op.drop_index(batch_op.f("ix_e_prescriptions_mdtrt_id"))
        batch_op.drop_index(batch_op.f("ix_e_prescriptions_circulated_to"))
    op.drop_table("e_prescriptions")
