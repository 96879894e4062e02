"""The review after settlement: every settlement of a period at every bureau and the national
platform, run through the claims rule base with the same facts the review before settlement
reads (``medfed supervise scan``, and the server's schedule)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.domain import benefits as b
from connectors.domain import codes
from connectors.registry import Source
from connectors.sql.queries import Row
from connectors.supervision import facts as fx
from connectors.supervision.rules import Hit, RuleBase
from security.warnings import NewWarning

CHUNK = 500  # persons per IN (...) read


def warning_of(
    hit: Hit, claim: Row, *, phase: str, source: str, doctor: str | None, settled: bool = True
) -> NewWarning:
    """What a warning is made of: the hit and the claim's codes (no personal value: the
    person is named by their pseudonymous reference only). A claim refused before it was
    written is named by its visit."""
    return NewWarning(
        rule=hit.rule,
        grade=hit.grade,
        phase=phase,
        setl_id=claim["setl_id"] if settled else None,
        mdtrt_id=claim["mdtrt_id"],
        source=source,
        person_ref=claim["person_ref"],
        institution_code=claim["institution_code"],
        doctor_code=doctor,
        insured_region=claim["insuplc_admdvs"],
        treatment_region=claim["mdtrtarea_admvs"],
        settled_at=claim["setl_time"],
        detail=hit.detail,
    )


@dataclass
class ScanResult:
    settlements: int = 0
    findings: list[NewWarning] = field(default_factory=list)


async def _direct(source: Source, query):
    return await source.guarded(lambda: query(source.engine))


async def _claims(source: Source, start: datetime, end: datetime) -> list[Row]:
    table = fx.settlement_table(source)

    async def query(engine: AsyncEngine) -> list[Row]:
        stmt = select(table).where(table.c.setl_time >= start, table.c.setl_time < end)
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    rows = await _direct(source, query)
    for row in rows:
        row["_source"] = source.name
    return rows


def bureau_names(bureaus: Sequence[Source]) -> dict[str, str]:
    return {str(s.spec.region): s.name for s in bureaus}


async def scan(
    bureaus: Sequence[Source],
    plat: Source | None,
    rule_base: RuleBase,
    benefits: b.Benefits,
    start: datetime,
    end: datetime,
    pharmacies: Sequence[Source] = (),
) -> ScanResult:
    """Every settlement with ``start <= settled_at < end``, reviewed by every enabled rule."""
    result = ScanResult()
    claims: list[Row] = []
    for source in [*bureaus, *([plat] if plat else [])]:
        claims += await _claims(source, start, end)
    result.settlements = len(claims)
    if not claims:
        return result
    by_bureau = bureau_names(bureaus)
    volume = rule_base.get("DOCTOR_VOLUME")
    busy: dict[tuple[str, date], int] = {}
    if volume is not None and volume.enabled:
        # visits begin before they are settled: look back a quarter for long stays
        first = (start - timedelta(days=92)).date()
        for source in bureaus:
            busy |= await fx.busy_doctor_days(
                _direct, source, first, end.date(), volume.params["max_visits_per_day"]
            )
    persons = fx.group_by(claims, "person_ref")
    for refs in fx.chunks(sorted(persons), CHUNK):
        rows = await fx.person_rows(_direct, bureaus, plat, refs)
        visit_ids: dict[str, list[str]] = {}
        for ref in refs:
            for claim in persons[ref]:
                where = by_bureau.get(codes.province_of(claim["mdtrtarea_admvs"]))
                if where:
                    visit_ids.setdefault(where, []).append(claim["mdtrt_id"])
        prescriptions: dict[str, list[Row]] = {}
        for source in bureaus:
            for rx in await fx.prescriptions_of(_direct, source, visit_ids.get(source.name, [])):
                prescriptions.setdefault(rx["mdtrt_id"], []).append(rx)
        dispensed = await fx.dispensings_of(
            _direct, pharmacies, (rx for rxs in prescriptions.values() for rx in rxs)
        )
        for ref in refs:
            for claim in persons[ref]:
                where = by_bureau.get(codes.province_of(claim["mdtrtarea_admvs"]))
                facts = fx.facts_for(claim, rows[ref], where, prescriptions, busy, dispensed)
                doctor = facts.visit["doctor_code"] if facts.visit else None
                for hit in rule_base.review(claim, facts, benefits):
                    result.findings.append(
                        warning_of(hit, claim, phase="POST", source=claim["_source"], doctor=doctor)
                    )
    return result
