"""bureau: indexes for a person's keyset pages

Each list a person has is read newest first, ``first + 1`` rows after a cursor
(connectors/sql/top.py); an index on (person_ref, sort key) lets the database read just those
rows instead of every row of the person and sorting them.

Revision ID: bureau_0002
Revises: bureau_0001
Create Date: 2026-12-01 15:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "bureau_0002"
down_revision: str | None = "bureau_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_visits_person_page", "visits", ["person_ref", "begin_date", "mdtrt_id"])
    op.create_index(
        "ix_prescriptions_person_page", "prescriptions", ["person_ref", "issued_at", "rx_id"]
    )
    op.create_index(
        "ix_settlements_person_page", "settlements", ["person_ref", "setl_time", "setl_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_visits_person_page", table_name="visits")
    op.drop_index("ix_prescriptions_person_page", table_name="prescriptions")
    op.drop_index("ix_settlements_person_page", table_name="settlements")
