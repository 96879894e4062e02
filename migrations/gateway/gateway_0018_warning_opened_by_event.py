"""gateway: a supervision warning is opened by an audit event

Revision ID: gateway_0018
Revises: gateway_0017
Create Date: 2026-12-01

A warning's fixed columns (rule, grade, claim, places, detail) were stored by the claims scan
and recordSettlement beside the log, which recorded only the run's counts. Now the event that
opens a warning carries its facts and the log's derive hook stores it (``opened_idx`` names
that event), so ``medfed audit verify`` proves them. The warnings opened before cannot be
proven: those never handled are dropped (the next scan finds them again and opens them
through the log); those already handled through the log keep their history and are reported
by verify as opened with no event.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0018"
down_revision: str | None = "gateway_0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("supervision_warnings") as batch:
        batch.add_column(sa.Column("opened_idx", sa.BigInteger(), nullable=True))
        batch.create_index("ix_supervision_warnings_opened_idx", ["opened_idx"])
    op.execute("DELETE FROM supervision_warnings WHERE state_idx IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("supervision_warnings") as batch:
        batch.drop_index("ix_supervision_warnings_opened_idx")
        batch.drop_column("opened_idx")
