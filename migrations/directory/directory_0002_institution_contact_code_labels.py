"""directory: institutions' address and phone; the names of national codes

Revision ID: directory_0002
Revises: directory_0001
Create Date: 2026-12-01 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "directory_0002"
down_revision: str | None = "directory_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("institutions") as batch:
        batch.add_column(sa.Column("address", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(length=32), nullable=True))
    op.create_table(
        "code_labels",
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("kind", "code"),
    )


def downgrade() -> None:
    op.drop_table("code_labels")
    with op.batch_alter_table("institutions") as batch:
        batch.drop_column("phone")
        batch.drop_column("address")
