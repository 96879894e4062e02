"""The app a user would write over the same sources: the peer medfed is measured against.

Plain Strawberry with its own ``ParserCache`` and ``ValidationCache``, served by Strawberry's
ASGI app; resolvers read each source directly (``sqlite3`` on the SQLite files, one
``asyncpg`` pool on PostgreSQL), page in SQL (``ORDER BY … DESC LIMIT first + 1`` per
source) and merge the sources' pages in Python. No policy, no audit, no enforcement, no
limits: only the field decryption every app over these sources needs (values are stored
encrypted, so the same cipher opens them). The statements are medfed's: persons and three
lists per bureau, the test results per hospital, filings and cross-province settlements at
the platform (19 for the cloud record).
"""

from __future__ import annotations

import asyncio
import heapq
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

from connectors.sql.engine import sqlite_path

Row = dict[str, Any]


# -- sources ------------------------------------------------------------------------------------
class SqliteStore:
    """One ``sqlite3`` connection per source file, read on the event loop's thread (an
    indexed read takes a tenth of a millisecond)."""

    mark = "?"

    def __init__(self, specs: Sequence[Any]) -> None:
        self._kinds: dict[str, list[tuple[str, sqlite3.Connection]]] = {}
        for spec in specs:
            conn = sqlite3.connect(
                f"{sqlite_path(spec.url).resolve().as_uri()}?mode=ro",
                uri=True,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            self._kinds.setdefault(spec.kind, []).append((spec.name, conn))

    def table(self, _source: str, name: str) -> str:
        return name

    async def each(self, kind: str, sql: Any, params: Sequence[Any]) -> list[tuple[str, list]]:
        return [
            (name, [dict(r) for r in conn.execute(sql(name), params).fetchall()])
            for name, conn in self._kinds.get(kind, [])
        ]

    async def close(self) -> None:
        for conns in self._kinds.values():
            for _, conn in conns:
                conn.close()


class PgStore:
    """One ``asyncpg`` pool for the database; each source is a schema, named in the SQL."""

    mark = "$"

    def __init__(self, specs: Sequence[Any]) -> None:
        self._specs = specs
        self._schemas = {spec.name: spec.schema for spec in specs}
        self._kinds: dict[str, list[str]] = {}
        for spec in specs:
            self._kinds.setdefault(spec.kind, []).append(spec.name)
        self.pool = None

    async def open(self) -> None:
        import asyncpg

        url = self._specs[0].url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.pool = await asyncpg.create_pool(url, min_size=2, max_size=8)

    def table(self, source: str, name: str) -> str:
        return f'"{self._schemas[source]}".{name}'

    async def each(self, kind: str, sql: Any, params: Sequence[Any]) -> list[tuple[str, list]]:
        names = self._kinds.get(kind, [])
        found = await asyncio.gather(*(self.pool.fetch(sql(n), *params) for n in names))
        return [(n, [dict(r) for r in rows]) for n, rows in zip(names, found, strict=True)]

    async def close(self) -> None:
        await self.pool.close()


# -- the API ------------------------------------------------------------------------------------
@strawberry.type
class Enrollment:
    enrollment_id: strawberry.ID | None
    insurance_type: str | None
    pooling_region: str | None
    begin_date: date | None
    end_date: date | None
    status: str | None
    account_balance: Decimal | None


@strawberry.type
class Visit:
    visit_id: strawberry.ID | None
    institution_code: str | None
    visit_type: str | None
    begin_date: date | None
    end_date: date | None
    diagnosis_codes: list[str] | None
    diagnosis_text: str | None
    doctor_code: str | None
    cross_region: bool | None


@strawberry.type
class Settlement:
    settlement_id: strawberry.ID | None
    settled_at: datetime | None
    total: Decimal | None
    fund_pay: Decimal | None
    account_pay: Decimal | None
    cash_pay: Decimal | None
    cross_province: bool | None


@strawberry.type
class TestResult:
    result_id: strawberry.ID | None
    item_code: str | None
    item_name: str | None
    value: float | None
    unit: str | None
    flag: str | None
    collected_at: datetime | None


@strawberry.type
class Filing:
    filing_id: strawberry.ID | None
    destination: str | None
    status: str | None
    valid_from: date | None


@strawberry.type
class EnrollmentPage:
    nodes: list[Enrollment]


@strawberry.type
class VisitPage:
    nodes: list[Visit]


@strawberry.type
class SettlementPage:
    nodes: list[Settlement]


@strawberry.type
class TestResultPage:
    nodes: list[TestResult]


@strawberry.type
class FilingPage:
    nodes: list[Filing]


def _date(v: Any) -> date | None:
    return date.fromisoformat(v) if isinstance(v, str) else v


def _time(v: Any) -> datetime | None:
    return datetime.fromisoformat(v) if isinstance(v, str) else v


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen).scaleb(-2)


async def _page(
    info: strawberry.Info,
    kinds: Sequence[tuple[str, str]],
    ref: str,
    order: tuple[str, str],
    first: int,
) -> list[tuple[str, Row]]:
    """The first ``first`` rows of ``ref`` over every source of each (kind, table), newest
    first: one ``LIMIT first`` statement per source, merged."""
    store = info.context["store"]
    a, b = order
    mark = "?" if store.mark == "?" else "$1"
    limit = "?" if store.mark == "?" else "$2"
    pages = []
    for kind, table in kinds:

        def sql(source: str, table: str = table) -> str:
            return (
                f"SELECT * FROM {store.table(source, table)} WHERE person_ref = {mark} "
                f"ORDER BY {a} DESC, {b} DESC LIMIT {limit}"
            )

        for source, rows in await store.each(kind, sql, (ref, first)):
            pages.append([(source, r) for r in rows])
    merged = heapq.merge(*pages, key=lambda p: (str(p[1][a]), p[1][b]), reverse=True)
    return [p for _, p in zip(range(first), merged, strict=False)]


def _open(info: strawberry.Info, source: str, table: str, column: str, row: Row, pk: str):
    blob = row[column]
    if blob is None:
        return None
    return info.context["cipher"].decrypt(
        bytes(blob), source=source, table=table, column=column, row_key=str(row[pk])
    )


@strawberry.type
class CloudRecord:
    ref: strawberry.Private[str]

    @strawberry.field
    async def enrollments(self, info: strawberry.Info, first: int = 20) -> EnrollmentPage:
        page = await _page(
            info, [("bureau", "enrollments")], self.ref, ("begin_date", "enrollment_id"), first
        )
        return EnrollmentPage(
            nodes=[
                Enrollment(
                    enrollment_id=r["enrollment_id"],
                    insurance_type=r["insutype"],
                    pooling_region=r["pool_admdvs"],
                    begin_date=_date(r["begin_date"]),
                    end_date=_date(r["end_date"]),
                    status=r["status"],
                    account_balance=_yuan(r["account_balance_fen"]),
                )
                for _, r in page
            ]
        )

    @strawberry.field
    async def visits(self, info: strawberry.Info, first: int = 20) -> VisitPage:
        page = await _page(
            info, [("bureau", "visits")], self.ref, ("begin_date", "mdtrt_id"), first
        )
        return VisitPage(
            nodes=[
                Visit(
                    visit_id=r["mdtrt_id"],
                    institution_code=r["institution_code"],
                    visit_type=r["visit_type"],
                    begin_date=_date(r["begin_date"]),
                    end_date=_date(r["end_date"]),
                    diagnosis_codes=[c for c in r["diagnosis_codes"].split(",") if c],
                    diagnosis_text=_open(
                        info, source, "visits", "diagnosis_text_enc", r, "mdtrt_id"
                    ),
                    doctor_code=r["doctor_code"],
                    cross_region=bool(r["cross_region"]),
                )
                for source, r in page
            ]
        )

    @strawberry.field
    async def settlements(self, info: strawberry.Info, first: int = 20) -> SettlementPage:
        page = await _page(
            info,
            [("bureau", "settlements"), ("platform", "cross_settlements")],
            self.ref,
            ("setl_time", "setl_id"),
            first,
        )
        return SettlementPage(
            nodes=[
                Settlement(
                    settlement_id=r["setl_id"],
                    settled_at=_time(r["setl_time"]),
                    total=_yuan(r["total_fen"]),
                    fund_pay=_yuan(r["fund_pay_fen"]),
                    account_pay=_yuan(r["acct_pay_fen"]),
                    cash_pay=_yuan(r["cash_pay_fen"]),
                    cross_province=bool(r.get("cross_province", "clearing_month" in r)),
                )
                for _, r in page
            ]
        )

    @strawberry.field
    async def test_results(self, info: strawberry.Info, first: int = 20) -> TestResultPage:
        page = await _page(
            info, [("hospital", "test_results")], self.ref, ("collected_at", "result_id"), first
        )
        return TestResultPage(
            nodes=[
                TestResult(
                    result_id=r["result_id"],
                    item_code=r["item_code"],
                    item_name=r["item_name"],
                    value=r["value"],
                    unit=r["unit"],
                    flag=r["flag"],
                    collected_at=_time(r["collected_at"]),
                )
                for _, r in page
            ]
        )

    @strawberry.field
    async def filings(self, info: strawberry.Info, first: int = 20) -> FilingPage:
        page = await _page(
            info, [("platform", "filings")], self.ref, ("filed_at", "filing_id"), first
        )
        return FilingPage(
            nodes=[
                Filing(
                    filing_id=r["filing_id"],
                    destination=r["mdtrtarea_admvs"],
                    status=r["status"],
                    valid_from=_date(r["valid_from"]),
                )
                for _, r in page
            ]
        )


@strawberry.type
class Person:
    person_id: strawberry.ID | None
    name: str | None
    id_number: str | None
    gender: str | None
    birth_date: date | None
    phone: str | None
    cloud_record: CloudRecord | None


@strawberry.type
class Query:
    @strawberry.field
    async def person(self, info: strawberry.Info, person_id: strawberry.ID) -> Person | None:
        store = info.context["store"]

        def sql(source: str) -> str:
            mark = "?" if store.mark == "?" else "$1"
            return f"SELECT * FROM {store.table(source, 'persons')} WHERE person_ref = {mark}"

        found = [(s, r) for s, rows in await store.each("bureau", sql, (person_id,)) for r in rows]
        if not found:
            return None
        source, row = found[0]

        def open_(column: str) -> str | None:
            return _open(info, source, "persons", column, row, "psn_no")

        birth = open_("birth_date_enc")
        return Person(
            person_id=row["person_ref"],
            name=open_("name_enc"),
            id_number=open_("id_number_enc"),
            gender=row["gender"],
            birth_date=None if birth is None else date.fromisoformat(birth),
            phone=open_("phone_enc"),
            cloud_record=CloudRecord(ref=row["person_ref"]),
        )


class _App(GraphQL):
    def __init__(self, schema: strawberry.Schema, context: dict) -> None:
        super().__init__(schema, graphql_ide=None)
        self._context = context

    async def get_context(self, request, response) -> dict:
        return self._context


def naive_app(store: SqliteStore | PgStore, cipher: Any) -> GraphQL:
    """The naive app over ``store``: Strawberry's ASGI app with its two caches."""
    schema = strawberry.Schema(
        Query, extensions=[ParserCache(maxsize=512), ValidationCache(maxsize=512)]
    )
    return _App(schema, {"store": store, "cipher": cipher})
