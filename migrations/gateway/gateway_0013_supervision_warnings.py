"""gateway: fund-supervision warnings (rule hits before and after settlement) and their notes

Revision ID: gateway_0013
Revises: gateway_0012
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0013"
down_revision: str | None = "gateway_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "supervision_warnings",
        sa.Column("warning_id", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=48), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=4), nullable=False),
        sa.Column("setl_id", sa.String(length=24), nullable=True),
        sa.Column("mdtrt_id", sa.String(length=24), nullable=True),
        sa.Column("clearing_id", sa.String(length=24), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("person_ref", sa.String(length=32), nullable=True),
        sa.Column("institution_code", sa.String(length=12), nullable=True),
        sa.Column("doctor_code", sa.String(length=16), nullable=True),
        sa.Column("insured_region", sa.String(length=6), nullable=False),
        sa.Column("treatment_region", sa.String(length=6), nullable=False),
        sa.Column("settled_at", sa.DateTime(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("warning_id"),
    )
    for column in (
        "rule",
        "setl_id",
        "person_ref",
        "institution_code",
        "doctor_code",
        "insured_region",
        "treatment_region",
        "found_at",
        "state",
    ):
        op.create_index(
            f"ix_supervision_warnings_{column}", "supervision_warnings", [column], unique=False
        )
    op.create_table(
        "supervision_warning_notes",
        sa.Column("warning_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("warning_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("supervision_warning_notes")
    for column in (
        "state",
        "found_at",
        "treatment_region",
        "insured_region",
        "doctor_code",
        "institution_code",
        "person_ref",
        "setl_id",
        "rule",
    ):
        op.drop_index(f"ix_supervision_warnings_{column}", table_name="supervision_warnings")
    op.drop_table("supervision_warnings")
