"""hospital: indexes for a person's keyset pages

Each list a person has is read newest first, ``first + 1`` rows after a cursor
(connectors/sql/top.py); an index on (person_ref, sort key) lets the database read just those
rows instead of every row of the person and sorting them.

Revision ID: hospital_0002
Revises: hospital_0001
Create Date: 2026-12-01 15:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "hospital_0002"
down_revision: str | None = "hospital_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_test_results_person_page", "test_results", ["person_ref", "collected_at", "result_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_test_results_person_page", table_name="test_results")
