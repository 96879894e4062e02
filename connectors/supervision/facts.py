"""The facts the claims rules look at, read from the sources in bulk: one loader serves the
review before a settlement (one person) and the scan after it (many persons, in chunks), so
both see the same rows. ``ask`` runs a query on one source: the mutation passes its guarded,
deadline-bound call; the scan runs on the engines directly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.registry import Source
from connectors.sql.models import bureau, pharmacy, platform
from connectors.sql.queries import Row, fetch_in
from connectors.supervision.rules import Facts, group_by

T = TypeVar("T")
Ask = Callable[[Source, Callable[[AsyncEngine], Awaitable[T]]], Awaitable[T]]
VISITS = bureau.Visit.__table__


def settlement_table(source: Source):
    if source.spec.kind == "platform":
        return platform.CrossSettlement.__table__
    return bureau.Settlement.__table__


@dataclass
class PersonRows:
    visits: list[Row] = field(default_factory=list)
    settlements: list[Row] = field(default_factory=list)
    enrolments: list[Row] = field(default_factory=list)


async def person_rows(
    ask: Ask, bureaus: Sequence[Source], plat: Source | None, refs: Sequence[str]
) -> dict[str, PersonRows]:
    """All of these persons' visits, settlements and enrolments at every bureau and the
    platform, each row tagged with its ``_source``."""
    out: dict[str, PersonRows] = {ref: PersonRows() for ref in refs}

    def add(source: Source, kind: str, rows: list[Row]) -> None:
        for row in rows:
            row["_source"] = source.name
            getattr(out[row["person_ref"]], kind).append(row)

    for source in bureaus:
        for kind, table in (
            ("visits", VISITS),
            ("settlements", bureau.Settlement.__table__),
            ("enrolments", bureau.Enrollment.__table__),
        ):
            add(source, kind, await ask(source, _in(table, "person_ref", refs)))
    if plat is not None:
        add(plat, "settlements", await ask(plat, _in(settlement_table(plat), "person_ref", refs)))
    return out


def _in(table: Any, column: str, keys: Sequence[Any]):
    return lambda engine: fetch_in(engine, table, column, keys)


async def prescriptions_of(ask: Ask, source: Source, visit_ids: Sequence[str]) -> list[Row]:
    return await ask(source, _in(bureau.Prescription.__table__, "mdtrt_id", visit_ids))


async def dispensings_of(
    ask: Ask, pharmacies: Sequence[Source], prescriptions: Iterable[Row]
) -> dict[str, list[Row]]:
    """The dispensings of the circulated ones among ``prescriptions`` at the pharmacies they
    were circulated to, by prescription: what the pharmacy handed out (and billed), whatever
    the bureau's copy says. A pharmacy that cannot answer fails the read, like any source
    the rules need."""
    circulated = [rx for rx in prescriptions if rx["circulated_to"] is not None]
    out: dict[str, list[Row]] = {}
    table = pharmacy.Dispensing.__table__
    for source in pharmacies:
        ids = sorted(
            {rx["rx_id"] for rx in circulated if rx["circulated_to"] == source.spec.institution}
        )
        if not ids:
            continue
        for row in await ask(source, _in(table, "rx_id", ids)):
            out.setdefault(row["rx_id"], []).append(row)
    return out


async def busy_doctor_days(
    ask: Ask,
    source: Source,
    first: date,
    last: date,
    above: int,
    doctor: str | None = None,
) -> dict[tuple[str, date], int]:
    """(doctor, day) -> visits, for each doctor-day between ``first`` and ``last`` with more
    than ``above`` visits at this bureau: one GROUP BY at the source."""

    async def query(engine: AsyncEngine) -> dict[tuple[str, date], int]:
        n = func.count().label("n")
        stmt = (
            select(VISITS.c.doctor_code, VISITS.c.begin_date, n)
            .where(
                VISITS.c.begin_date >= first,
                VISITS.c.begin_date <= last,
                VISITS.c.visit_type != "PHARMACY",  # a pharmacist's sales, not a doctor's visits
            )
            .group_by(VISITS.c.doctor_code, VISITS.c.begin_date)
            .having(func.count() > above)
        )
        if doctor is not None:
            stmt = stmt.where(VISITS.c.doctor_code == doctor)
        async with engine.connect() as conn:
            return {(r[0], r[1]): r[2] for r in await conn.execute(stmt)}

    return await ask(source, query)


def facts_for(
    claim: Row,
    rows: PersonRows,
    treatment_bureau: str | None,
    prescriptions: dict[str, list[Row]],
    busy: dict[tuple[str, date], int],
    dispensings: dict[str, list[Row]] | None = None,
) -> Facts:
    """The facts of one claim from its person's rows (the claim left out of settlements)."""
    visit = next(
        (
            v
            for v in rows.visits
            if v["mdtrt_id"] == claim["mdtrt_id"] and v["_source"] == treatment_bureau
        ),
        None,
    )
    return Facts(
        visit=visit,
        visits=rows.visits,
        settlements=[s for s in rows.settlements if s["setl_id"] != claim["setl_id"]],
        enrolments=rows.enrolments,
        prescriptions=(mine := prescriptions.get(claim["mdtrt_id"], [])),
        dispensings={rx["rx_id"]: (dispensings or {}).get(rx["rx_id"], []) for rx in mine},
        doctor_day_visits=busy.get((visit["doctor_code"], visit["begin_date"]), 0) if visit else 0,
    )


def chunks(items: Iterable[T], size: int) -> Iterable[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = [
    "Ask",
    "PersonRows",
    "busy_doctor_days",
    "chunks",
    "dispensings_of",
    "facts_for",
    "group_by",
    "person_rows",
    "prescriptions_of",
    "settlement_table",
]
