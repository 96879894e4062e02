"""gateway: audit_index party columns, by which an auditor's scope is decided

Revision ID: gateway_0012
Revises: gateway_0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0012"
down_revision: str | None = "gateway_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "audit_index", sa.Column("party_orgs", sa.Text(), nullable=False, server_default=",")
    )
    op.add_column(
        "audit_index", sa.Column("party_regions", sa.Text(), nullable=False, server_default=",")
    )
    # The index is derived from the log: emptied here, it is rebuilt with the parties of every
    # event when the gateway next opens the log (security.audit.index.catch_up).
    op.execute("DELETE FROM audit_index")


def downgrade() -> None:
    with op.batch_alter_table("audit_index") as batch:
        batch.drop_column("party_regions")
        batch.drop_column("party_orgs")
