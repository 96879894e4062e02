"""bureau: an index of visits by (doctor, first day), for the claims rule on doctors' volume

Revision ID: bureau_0003
Revises: bureau_0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "bureau_0003"
down_revision: str | None = "bureau_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_visits_doctor_day", "visits", ["doctor_code", "begin_date"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_visits_doctor_day", table_name="visits")
