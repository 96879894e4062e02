"""gateway: one state model for access alerts and supervision warnings

Revision ID: gateway_0017
Revises: gateway_0016
Create Date: 2026-12-01

Alerts get a grade and an owner and the four states of the supervision warnings (a CLOSED
alert becomes RESOLVED, as the log's derive hook now reads the old change events). A
warning's state, owner and last note are now set only by the audit log's change events, and
its history is ``supervision_warning_changes``, derived from those events. The old
``supervision_warning_notes`` were written beside the log (the log held only each note's
digest), so nothing can prove them: they are dropped, and the warnings they changed are
reopened, unowned, to be handled again through the log.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0017"
down_revision: str | None = "gateway_0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# security.audit.alert_state.ALERT_GRADES when this revision was written.
GRADES = {"BREAK_GLASS": 3, "VOLUME_SPIKE": 3, "PROBING": 3, "OFF_HOURS": 2}


def upgrade() -> None:
    with op.batch_alter_table("audit_alerts") as batch:
        batch.add_column(sa.Column("grade", sa.Integer(), nullable=False, server_default="2"))
        batch.add_column(sa.Column("owner", sa.String(length=255), nullable=True))
        batch.create_index("ix_audit_alerts_owner", ["owner"])
    for rule, grade in GRADES.items():
        op.execute(
            sa.text("UPDATE audit_alerts SET grade = :g WHERE rule = :r").bindparams(
                g=grade, r=rule
            )
        )
    op.execute("UPDATE audit_alerts SET state = 'RESOLVED' WHERE state = 'CLOSED'")
    with op.batch_alter_table("audit_alerts") as batch:
        batch.alter_column("grade", server_default=None)

    op.drop_table("supervision_warning_notes")
    op.create_table(
        "supervision_warning_changes",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("warning_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("idx"),
    )
    op.create_index(
        "ix_supervision_warning_changes_warning_id", "supervision_warning_changes", ["warning_id"]
    )
    with op.batch_alter_table("supervision_warnings") as batch:
        batch.add_column(sa.Column("state_idx", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("changed_by", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("changed_org", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("note", sa.LargeBinary(), nullable=True))
        batch.create_index("ix_supervision_warnings_state_idx", ["state_idx"])
        batch.create_index("ix_supervision_warnings_owner", ["owner"])
    op.execute("UPDATE supervision_warnings SET state = 'OPEN', owner = NULL")


def downgrade() -> None:
    with op.batch_alter_table("supervision_warnings") as batch:
        batch.drop_index("ix_supervision_warnings_owner")
        batch.drop_index("ix_supervision_warnings_state_idx")
        for column in ("note", "changed_at", "changed_org", "changed_by", "state_idx"):
            batch.drop_column(column)
    op.drop_table("supervision_warning_changes")
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
    op.execute("UPDATE audit_alerts SET state = 'CLOSED' WHERE state <> 'OPEN'")
    with op.batch_alter_table("audit_alerts") as batch:
        batch.drop_index("ix_audit_alerts_owner")
        batch.drop_column("owner")
        batch.drop_column("grade")
