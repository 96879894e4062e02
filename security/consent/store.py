"""Granting, revoking and reading consents (知情同意) in the gateway's own database.

Times are stored in UTC. Every method takes aware datetimes; a naive one is read as the
machine's local time, which is what ``datetime.now()`` gives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from security.consent.classes import ConsentStatus, DataClass
from security.consent.models import ConsentRow
from security.errors import MedfedError
from security.identity.roles import Purpose
from security.store import insert_if_absent

TABLE = ConsentRow.__table__


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; naive means local time (as ``datetime.now()`` returns)."""
    return moment.astimezone(UTC)


def _from_db(moment: datetime | None) -> datetime | None:
    # SQLite drops the zone on the way in; what it stored was UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Consent:
    """One patient's permission for one institution to read some classes of their data for
    one purpose during a period."""

    consent_id: str
    person_ref: str
    grantee: str
    data_classes: frozenset[DataClass]
    purpose: Purpose
    valid_from: datetime
    valid_until: datetime
    granted_at: datetime
    revoked_at: datetime | None

    def status(self, now: datetime) -> ConsentStatus:
        # A revocation counts whatever the clock says: revocation must win at once, even on
        # a worker whose clock lags the one that recorded it.
        if self.revoked_at is not None:
            return ConsentStatus.REVOKED
        now = utc(now)
        if now < self.valid_from:
            return ConsentStatus.PENDING
        if now >= self.valid_until:
            return ConsentStatus.EXPIRED
        return ConsentStatus.ACTIVE

    def is_active(self, now: datetime) -> bool:
        return self.status(now) is ConsentStatus.ACTIVE

    def covers(
        self, institution: str, data_class: DataClass | str, purpose: Purpose | str, now: datetime
    ) -> bool:
        """Whether this consent lets ``institution`` read ``data_class`` for ``purpose`` now.
        Classes match whatever their case (the catalogue writes ``lab_result``); a class no
        consent can name (``audit``, ``aggregate``) is never covered."""
        wanted = str(data_class).upper()
        return (
            self.grantee == institution
            and wanted in {c.value for c in self.data_classes}
            and self.purpose == str(purpose).upper()
            and self.is_active(now)
        )

    @classmethod
    def from_row(cls, row: Any) -> Consent:
        return cls(
            consent_id=row.consent_id,
            person_ref=row.person_ref,
            grantee=row.grantee,
            data_classes=frozenset(DataClass(c) for c in row.data_classes.split(",") if c),
            purpose=Purpose(row.purpose),
            valid_from=_from_db(row.valid_from),
            valid_until=_from_db(row.valid_until),
            granted_at=_from_db(row.granted_at),
            revoked_at=_from_db(row.revoked_at),
        )


class ConsentNotFound(MedfedError, LookupError):
    """No consent has this identifier."""


class NotYourConsent(MedfedError, PermissionError):
    """The consent belongs to another person."""


class ConsentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def grant(
        self,
        *,
        consent_id: str,
        person_ref: str,
        grantee: str,
        data_classes: Iterable[DataClass],
        purpose: Purpose,
        valid_from: datetime,
        valid_until: datetime,
        now: datetime,
    ) -> Consent:
        """Store a consent unless one with ``consent_id`` exists; return the stored one.

        ``consent_id`` is derived from the caller's idempotency key, so a retry returns the
        consent the first attempt stored rather than a second copy.
        """
        row = {
            "consent_id": consent_id,
            "person_ref": person_ref,
            "grantee": grantee,
            "data_classes": ",".join(sorted({DataClass(c).value for c in data_classes})),
            "purpose": Purpose(purpose).value,
            "valid_from": utc(valid_from),
            "valid_until": utc(valid_until),
            "granted_at": utc(now),
            "revoked_at": None,
        }
        async with self._engine.begin() as conn:
            await insert_if_absent(conn, TABLE, row)
        consent = await self.get(consent_id)
        assert consent is not None
        return consent

    async def get(self, consent_id: str) -> Consent | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(TABLE).where(TABLE.c.consent_id == consent_id))
            ).first()
        return None if row is None else Consent.from_row(row)

    async def revoke(self, consent_id: str, *, person_ref: str, now: datetime) -> Consent:
        """Revoke a consent of ``person_ref``. Revoking a revoked consent changes nothing and
        returns it as it is (first revocation time kept)."""
        consent = await self.get(consent_id)
        if consent is None:
            raise ConsentNotFound(consent_id)
        if consent.person_ref != person_ref:
            raise NotYourConsent(consent_id)
        if consent.revoked_at is None:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(TABLE)
                    .where(TABLE.c.consent_id == consent_id, TABLE.c.revoked_at.is_(None))
                    .values(revoked_at=utc(now))
                )
            consent = await self.get(consent_id)
            assert consent is not None
        return consent

    async def list_for(
        self, person_ref: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Consent]:
        """A person's consents in every state, newest grant first, keyset-paged by
        (granted_at, consent_id)."""
        key = tuple_(TABLE.c.granted_at, TABLE.c.consent_id)
        stmt = select(TABLE).where(TABLE.c.person_ref == person_ref)
        if after is not None:
            stmt = stmt.where(key < tuple_(utc(after[0]), after[1]))
        stmt = stmt.order_by(TABLE.c.granted_at.desc(), TABLE.c.consent_id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [Consent.from_row(r) for r in await conn.execute(stmt)]

    async def active_consents(self, person_ref: str, now: datetime) -> list[Consent]:
        """The consents of ``person_ref`` in force at ``now`` (not revoked, within period)."""
        found = await self.active_consents_for([person_ref], now)
        return found.get(person_ref, [])

    async def active_consents_for(
        self, person_refs: Iterable[str], now: datetime
    ) -> dict[str, list[Consent]]:
        """Active consents of many persons in one statement (for per-request loaders)."""
        refs = list(dict.fromkeys(person_refs))
        if not refs:
            return {}
        moment = utc(now)
        stmt = (
            select(TABLE)
            .where(
                TABLE.c.person_ref.in_(refs),
                TABLE.c.revoked_at.is_(None),
                TABLE.c.valid_from <= moment,
                TABLE.c.valid_until > moment,
            )
            .order_by(TABLE.c.person_ref, TABLE.c.granted_at, TABLE.c.consent_id)
        )
        out: dict[str, list[Consent]] = {}
        async with self._engine.connect() as conn:
            for row in await conn.execute(stmt):
                out.setdefault(row.person_ref, []).append(Consent.from_row(row))
        return out

    async def consented_to(
        self, grantee: str, purpose: Purpose | str, now: datetime
    ) -> dict[str, frozenset[str]]:
        """Persons with an active consent naming ``grantee`` for ``purpose``, and the classes
        (lower case, as the catalogue writes them) each consented to: one statement."""
        moment = utc(now)
        stmt = select(TABLE).where(
            TABLE.c.grantee == grantee,
            TABLE.c.purpose == str(purpose).upper(),
            TABLE.c.revoked_at.is_(None),
            TABLE.c.valid_from <= moment,
            TABLE.c.valid_until > moment,
        )
        out: dict[str, set[str]] = {}
        async with self._engine.connect() as conn:
            for row in await conn.execute(stmt):
                consent = Consent.from_row(row)
                out.setdefault(consent.person_ref, set()).update(
                    c.value.lower() for c in consent.data_classes
                )
        return {ref: frozenset(classes) for ref, classes in out.items()}
