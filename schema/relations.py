"""How each row relates to the caller: SELF, TREATING, CONSENTED, BREAK_GLASS, PHARMACY,
REGION or NONE.

Relations that need data (treating, consent, break-glass) are per person and loaded in one
batch per source kind through a DataLoader, so a list of many rows costs one query per
source whatever its length; resolvers ``await prepare(refs)`` before building projections.
Row relations (pharmacy, region) come from the row's own columns. ``relation`` itself is
synchronous and cheap. A person not prepared has no person relation: fail closed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, false, or_, select
from strawberry.dataloader import DataLoader

from connectors.fanout import fan_out
from connectors.registry import Source
from connectors.sql.models import bureau
from security.enforcement import Relation
from security.identity.roles import Purpose, Role
from security.identity.scope import region_prefix
from security.policy.break_glass import (
    GATEWAY_KEY_SOURCE,
    REASON_CELL,
    REASON_REQUIRED,
    UNAVAILABLE,
    BreakGlassLedger,
)

if TYPE_CHECKING:
    from schema.context import RequestContext

log = logging.getLogger("medfed.policy")

INSTITUTION = re.compile(r"^[HP]\d{11}$")
REGION_CODE = re.compile(r"^\d{6}$")
REGION_ROLES = frozenset({Role.INSURANCE_AGENCY, Role.SETTLEMENT_CENTER})
REGION_COLUMNS = ("insuplc_admdvs", "mdtrtarea_admvs", "pool_admdvs")


@dataclass(frozen=True, slots=True)
class PersonRelation:
    treating: bool = False
    consented: frozenset[str] = frozenset()  # catalogue classes the person consented to
    break_glass: bool = False


NO_RELATION = PersonRelation()


def treating_since(ctx: RequestContext) -> date:
    """The first day of the treating window: a visit that began on or after it makes the
    visit's institution treating."""
    return (ctx.now - timedelta(days=ctx.services.policy.treating_window_days)).date()


class Relations:
    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        principal = ctx.principal
        self.role = principal.role
        self.org = principal.org
        self.self_ref = principal.person_ref if principal.role is Role.PATIENT else None
        self.pharmacy = self.role is Role.PHARMACIST and self.org.startswith("P")
        self.by_institution = bool(INSTITUTION.match(self.org)) and self.role in (
            Role.CLINICIAN,
            Role.PHARMACIST,
        )
        policy = ctx.services.policy
        self.prefix: str | None = None
        if self.role in REGION_ROLES and REGION_CODE.match(self.org):
            self.prefix = "" if self.org in policy.national_orgs else region_prefix(self.org)
        # The settlement centre's jurisdiction is the national platform's rows only.
        self.platform_only = self.role is Role.SETTLEMENT_CENTER
        self._kinds = {s.name: s.spec.kind for s in ctx.registry}
        self._persons: dict[str, PersonRelation] = {}
        self._loader: DataLoader[str, PersonRelation] = DataLoader(self._load)
        self.break_glass_granted: set[str] = set()
        self.break_glass_refused: set[str] = set()
        self.break_glass_limit: int | None = None
        # Persons whose break-glass this request opened (each opens an alert), why some
        # were refused, and the reason's ciphertext (the audit event carries it).
        self.break_glass_opened: set[str] = set()
        self.break_glass_refused_because: str | None = None
        self.break_glass_reason_text: bytes | None = None

    # -- per person, batched ----------------------------------------------------------------
    async def prepare(self, person_refs: Iterable[str | None]) -> None:
        if not self.by_institution:
            return  # nothing but SELF and row relations can hold for this caller
        wanted = [r for r in dict.fromkeys(person_refs) if r and r not in self._persons]
        if wanted:
            for ref, rel in zip(wanted, await self._loader.load_many(wanted), strict=True):
                self._persons[ref] = rel

    async def _load(self, refs: Sequence[str]) -> list[PersonRelation]:
        treating = await self._treating(refs) if self.org.startswith("H") else set()
        consented = await self._consents(refs)
        glass: set[str] = set()
        if self.role is Role.CLINICIAN and self.ctx.purpose is Purpose.EMERGENCY:
            glass = await self._break_glass(
                [r for r in refs if r not in treating and not consented.get(r)]
            )
        return [
            PersonRelation(r in treating, consented.get(r, frozenset()), r in glass) for r in refs
        ]

    async def _treating(self, refs: Sequence[str]) -> set[str]:
        """Persons with a visit at the caller's institution within the treating window.

        Only a bureau's visit counts: it is recorded by the insurance bureau's source, a party
        other than the caller. A result the caller's own hospital published (or holds in its
        own LIS/PACS) proves nothing about treatment, so results never make a relation."""
        ctx = self.ctx
        visits: Table = bureau.Visit.__table__
        stmt = (
            select(visits.c.person_ref)
            .distinct()
            .where(
                visits.c.person_ref.in_(list(refs)),
                visits.c.institution_code == self.org,
                visits.c.begin_date >= treating_since(ctx),
            )
        )

        async def query(source: Source) -> set[str]:
            async with source.engine.connect() as conn:
                return {r[0] for r in await conn.execute(stmt)}

        found, failures = await fan_out(ctx.registry.of_kind("bureau"), query, ctx.deadline)
        ctx.note_failures(failures)  # an unreachable source proves no relation: fail closed
        return set().union(*found.values())

    async def _consents(self, refs: Sequence[str]) -> dict[str, frozenset[str]]:
        engine = self.ctx.services.gateway_engine
        if engine is None:
            return {}
        from security.consent import ConsentStore

        try:
            active = await ConsentStore(engine).active_consents_for(refs, self.ctx.now)
        except Exception:  # no consent store, no consent: the policy then denies
            log.exception("consent lookup failed; treating the persons as not consented")
            return {}
        out: dict[str, frozenset[str]] = {}
        ctx = self.ctx
        for ref, consents in active.items():
            # The one consent check (``Consent.covers``), per class the consent names.
            classes = {
                c.value.lower()
                for consent in consents
                for c in consent.data_classes
                if consent.covers(self.org, c, ctx.purpose, ctx.now)
            }
            if classes:
                out[ref] = frozenset(classes)
        return out

    async def _break_glass(self, refs: list[str]) -> set[str]:
        if not refs:
            return set()
        services = self.ctx.services
        policy = services.policy
        self.break_glass_limit = policy.break_glass_persons_per_day
        reason = self.ctx.break_glass_reason
        if services.gateway_engine is None or reason is None:
            # No ledger to count in, or no reason given (the edge refuses that already).
            self.break_glass_refused.update(refs)
            self.break_glass_refused_because = UNAVAILABLE if reason else REASON_REQUIRED
            return set()
        ledger = BreakGlassLedger(
            services.gateway_engine,
            persons_per_day=policy.break_glass_persons_per_day,
            hours=policy.break_glass_hours,
            institution_per_day=policy.break_glass_institution_per_day,
        )
        principal = self.ctx.principal
        try:
            if self.break_glass_reason_text is None:
                table, column = REASON_CELL
                self.break_glass_reason_text = services.cipher.encrypt(
                    reason.text,
                    source=GATEWAY_KEY_SOURCE,
                    table=table,
                    column=column,
                    row_key=self.ctx.request_id,
                )
            outcome = await ledger.grant(
                f"{principal.issuer}|{principal.sub}",
                self.org,
                refs,
                self.ctx.now,
                reason.code,
                self.break_glass_reason_text,
            )
        except Exception:  # a ledger that cannot count grants nothing
            log.exception("break-glass ledger failed; refusing")
            self.break_glass_refused.update(refs)
            self.break_glass_refused_because = UNAVAILABLE
            return set()
        self.break_glass_granted |= outcome.granted
        self.break_glass_refused |= outcome.refused
        self.break_glass_opened |= outcome.opened
        if outcome.refused_because is not None:
            self.break_glass_refused_because = outcome.refused_because
        return set(outcome.granted)

    # -- per row, synchronous -------------------------------------------------------------------
    def relation(
        self, ref: str | None, row: dict[str, Any] | None, data_class: str | None = None
    ) -> Relation:
        if ref is not None:
            if ref == self.self_ref:
                return Relation.SELF
            person = self._persons.get(ref, NO_RELATION)
            if person.treating:
                return Relation.TREATING
            if data_class is not None and data_class in person.consented:
                return Relation.CONSENTED
            if person.break_glass:
                return Relation.BREAK_GLASS
        if row is not None:
            if self.pharmacy and self.org in (row.get("circulated_to"), row.get("pharmacy_code")):
                return Relation.PHARMACY
            if self.prefix is not None and self._in_region(row):
                return Relation.REGION
        return Relation.NONE

    def person_decides(self, ref: str | None, data_class: str | None = None) -> bool:
        """Whether every row of this (prepared) person relates to the caller alike for a
        field of ``data_class``: a person relation holds (``relation`` answers it before
        looking at the row), or none can and the caller has no row relation at all. Then a
        list shows all of the person's rows or none, and its page can be cut in SQL."""
        if not (self.pharmacy or self.prefix is not None):
            return True
        if ref is None:
            return False
        if ref == self.self_ref:
            return True
        person = self._persons.get(ref, NO_RELATION)
        return (
            person.treating
            or (data_class is not None and data_class in person.consented)
            or person.break_glass
        )

    def _in_region(self, row: dict[str, Any]) -> bool:
        if self.platform_only and self._kinds.get(row.get("_source")) != "platform":
            return False
        prefix = self.prefix
        for column in REGION_COLUMNS:
            value = row.get(column)
            if value and value.startswith(prefix):
                return True
        code = row.get("institution_code")
        return bool(code) and code[1:7].startswith(prefix)

    # -- SQL scope for multi-person lists -------------------------------------------------------
    def row_scope(self, source: Source, table: Table) -> list[ColumnElement[bool]]:
        """Clauses that keep a regional caller's list queries to its own rows, so pages are
        full and no cursor points past rows it may not see."""
        if self.prefix is None:
            return []
        if self.platform_only and source.spec.kind != "platform":
            return [false()]
        columns = [table.c[c] for c in REGION_COLUMNS if c in table.c]
        if not columns or not self.prefix:
            return []
        return [or_(*(c.startswith(self.prefix) for c in columns))]
