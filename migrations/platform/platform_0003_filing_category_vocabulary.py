"""platform: one vocabulary for filing categories

The demo wrote retirees resettled elsewhere (异地安置退休人员) as ``RETIRED_RESETTLED`` while
``fileForCrossRegionCare`` accepted only ``RELOCATED_RETIREE``, so a filing's category depended
on who wrote it and the API could not answer it as one enum. The categories name kinds of
person (``LONG_TERM_RESIDENT``, a relocated retiree), so ``RELOCATED_RETIREE`` stays and the
rows written under the other name are renamed.

Revision ID: platform_0003
Revises: platform_0002
Create Date: 2026-12-01 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "platform_0003"
down_revision: str | None = "platform_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILINGS = sa.table("filings", sa.column("category", sa.String))


def _rename(old: str, new: str) -> None:
    op.execute(FILINGS.update().where(FILINGS.c.category == old).values(category=new))


def upgrade() -> None:
    _rename("RETIRED_RESETTLED", "RELOCATED_RETIREE")


def downgrade() -> None:
    # Lossy by nature: a RELOCATED_RETIREE filed through the API before this revision becomes
    # the demo's old name too. Downgrades are for development databases only.
    _rename("RELOCATED_RETIREE", "RETIRED_RESETTLED")
