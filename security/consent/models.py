"""The consents table in the gateway's own database.

Consents live with the gateway, not at any source: they are the patient's decision about
who may read across sources, and the policy reads them on every request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from security.store import GatewayBase


class ConsentRow(GatewayBase):
    __tablename__ = "consents"
    __table_args__ = (
        # Serves both the patient's list (newest first) and the policy's lookup by person.
        Index("ix_consents_person_granted", "person_ref", "granted_at", "consent_id"),
    )

    consent_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    person_ref: Mapped[str] = mapped_column(String(32))
    grantee: Mapped[str] = mapped_column(String(12))  # institution code (H… or P…)
    data_classes: Mapped[str] = mapped_column(String(200))  # DataClass names, comma separated
    purpose: Mapped[str] = mapped_column(String(20))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
