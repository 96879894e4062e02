"""gateway: the audit head remembers the size of the latest checkpoint

Writers decide whether a batch is due for a checkpoint from the head row they already hold
locked, instead of a further query per commit.

Revision ID: gateway_0004
Revises: gateway_0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0004"
down_revision: str | None = "gateway_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_head") as batch_op:
        batch_op.add_column(sa.Column("signed_size", sa.BigInteger(), nullable=False,
                                      server_default="0"))
    op.execute("UPDATE audit_head SET signed_size = "
               "(SELECT COALESCE(MAX(size), 0) FROM audit_checkpoints)")
    with op.batch_alter_table("audit_head") as batch_op:
        batch_op.alter_column("signed_size", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("audit_head") as batch_op:
        batch_op.drop_column("signed_size")
