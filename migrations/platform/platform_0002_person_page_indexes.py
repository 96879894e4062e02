"""platform: indexes for a person's keyset pages

Each list a person has is read newest first, ``first + 1`` rows after a cursor
(connectors/sql/top.py); an index on (person_ref, sort key) lets the database read just those
rows instead of every row of the person and sorting them.

Revision ID: platform_0002
Revises: platform_0001
Create Date: 2026-12-01 15:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "platform_0002"
down_revision: str | None = "platform_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_filings_person_page", "filings", ["person_ref", "filed_at", "filing_id"])
    op.create_index(
        "ix_cross_settlements_person_page",
        "cross_settlements",
        ["person_ref", "setl_time", "setl_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_filings_person_page", table_name="filings")
    op.drop_index("ix_cross_settlements_person_page", table_name="cross_settlements")
