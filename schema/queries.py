"""Entry points of the API (Query type)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import Table

from connectors.domain import codes
from connectors.fanout import fan_out
from connectors.registry import Source
from connectors.sql.models import bureau, directory, platform
from connectors.sql.queries import Row, fetch_page
from schema.codes import CodesQuery
from schema.enums import (
    FilingStatus,
    InstitutionKind,
    InstitutionLevel,
    TestCategory,
    VisitType,
)
from schema.errors import bad_input, forbidden
from schema.mutations.consents import ConsentQuery
from schema.mutations.extracts import ExtractQuery
from schema.mutations.validation import beijing
from schema.pagination import Connection, connection, decode_cursor, merge_pages, page_size
from schema.projection import Projection
from schema.selection import requested_nodes
from schema.statistics import StatisticsQuery
from schema.supervision.monitoring import SupervisionQuery
from schema.supervision.warnings import WarningQuery
from schema.types.audit import AuditQuery
from schema.types.filings import FILING, Filing
from schema.types.institution import Institution
from schema.types.person import Person, person_from_rows, person_list
from schema.types.prescriptions import PrescriptionQuery
from schema.types.records import SETTLEMENT, Settlement
from schema.types.records_log import RecordsLogQuery
from schema.types.results import TEST_RESULT, TestResult
from schema.types.trace import TraceQuery
from security.identity.scope import region_prefix

PAGE_ARGS = "first: at most 100 (default 20); after: a cursor from pageInfo.endCursor."


def _check_region(name: str, value: str | None, problems: list[dict]) -> None:
    if value is not None and (problem := codes.validate_region(value)):
        problems.append({"path": [name], "reason": problem})


def _raise_if(problems: list[dict]) -> None:
    if problems:
        raise bad_input("; ".join(f"{p['path'][-1]}: {p['reason']}" for p in problems), problems)


def _own_person_only(info: strawberry.Info, person_id: str | None) -> str | None:
    """Patients may only ask about themselves: their own personId is implied."""
    ctx = info.context
    if not ctx.is_patient:
        return person_id
    own = ctx.principal.person_ref
    if person_id is not None and person_id != own:
        raise forbidden("a patient may only read their own record")
    return own


async def _paged(
    info: strawberry.Info,
    sources: Sequence[Source],
    table_of: Callable[[Source], Table],
    where_of: Callable[[Table], list],
    order: Sequence[str],
    shape: Sequence[type],
    descending: bool,
    first: int | None,
    after: str | None,
) -> tuple[list[Row], int]:
    """One keyset page from every source, merged by the same key: lists across persons
    (a person's own lists are loaded whole, see ``person_list``)."""
    ctx = info.context
    limit = page_size(first)
    cursor = decode_cursor(after, shape)
    key = _key(order)

    async def query(source: Source) -> list[Row]:
        table = table_of(source)
        # A regional caller's lists are scoped in SQL, so its pages are full of its own rows.
        where = [*where_of(table), *ctx.relations.row_scope(source, table)]
        rows = await fetch_page(
            source.engine,
            table,
            where=where,
            order=order,
            descending=descending,
            after=cursor,
            limit=limit + 1,
        )
        for row in rows:
            row["_source"] = source.name
        return rows

    results, failures = await fan_out(sources, query, ctx.deadline)
    ctx.note_failures(failures)
    if failures:
        ctx.attribute_failures(info)
    return merge_pages(results.values(), key, descending, limit + 1), limit


def _key(order: Sequence[str]) -> Callable[[Row], tuple[Any, ...]]:
    return lambda row: tuple(row[c] for c in order)


async def _visible_page(
    info: strawberry.Info,
    projection: Projection,
    rows: list[Row],
    limit: int,
    order: Sequence[str],
    after: str | None,
) -> Connection:
    """A page of the rows the caller may see, out of the ``limit + 1`` the sources gave.
    Rows it may not see are dropped before any cursor is made from them and never count
    towards ``hasNextPage``: a hidden row leaves no trace, so a page may end early."""
    ctx = info.context
    await ctx.prepare_relations({r["person_ref"] for r in rows})
    rows = projection.keep_visible(ctx, rows)[: limit + 1]
    wanted = requested_nodes(info)
    key = _key(order)
    return connection([(key(r), projection.build(ctx, r, wanted)) for r in rows], limit, after)


def _moment(value: datetime) -> datetime:
    return beijing(value)


def _settlement_matches(f: SettlementFilter, row: Row, cross: bool) -> bool:
    """The filter's SQL clauses, for one person's rows loaded whole (``cross``: whether the
    row is a cross-province settlement)."""

    def starts(value: str | None, code: str | None) -> bool:
        return code is None or (value or "").startswith(region_prefix(code))

    return (
        starts(row.get("insuplc_admdvs"), f.insured_region)
        and starts(row.get("mdtrtarea_admvs"), f.treatment_region)
        and (f.settled_from is None or _moment(row["setl_time"]) >= _moment(f.settled_from))
        and (f.settled_before is None or _moment(row["setl_time"]) < _moment(f.settled_before))
        and (f.medical_type is None or row.get("med_type") == f.medical_type.value)
        and (f.institution_code is None or row.get("institution_code") == f.institution_code)
        and (f.cross_province is None or cross == f.cross_province)
    )


def _within(value: str | None, code: str) -> bool:
    return (value or "").startswith(region_prefix(code))


async def _person_settlements(
    info: strawberry.Info, f: SettlementFilter, ref: str, first: int | None, after: str | None
) -> Connection[Settlement]:
    """One person's settlements, in the province (bureaus, peers) and cross-province (the
    platform), loaded whole and filtered here: the same statements whatever the person has."""
    ctx = info.context
    platform_kind = {s.name for s in ctx.registry.of_kind("platform")}

    def keep(r: Row) -> bool:
        cross = r.get("_source") in platform_kind or bool(r.get("cross_province"))
        return _settlement_matches(f, r, cross)

    return await person_list(
        info,
        (ctx.loaders.settlements, ctx.loaders.cross_settlements),
        ref,
        SETTLEMENT,
        lambda r: (r["setl_time"], r["setl_id"]),
        (datetime, str),
        first,
        after,
        keep,
    )


@strawberry.input(
    description="Which settlements to list. Regions match everything inside "
    "them: a province code (330000) matches its cities and districts."
)
class SettlementFilter:
    person_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only this person."
    )
    insured_region: str | None = strawberry.field(
        default=None, description="Insured place (参保地)."
    )
    treatment_region: str | None = strawberry.field(
        default=None, description="Treatment place (就医地)."
    )
    settled_from: datetime | None = strawberry.field(
        default=None, description="Settled at or after."
    )
    settled_before: datetime | None = strawberry.field(default=None, description="Settled before.")
    medical_type: VisitType | None = strawberry.field(default=None, description="Medical type.")
    cross_province: bool | None = strawberry.field(
        default=None, description="Only cross-province (true) or only in-province (false)."
    )
    institution_code: str | None = strawberry.field(
        default=None, description="Treating institution."
    )


@strawberry.type(description="The read entry points of medfed.")
class Query(
    CodesQuery,
    ConsentQuery,
    AuditQuery,
    StatisticsQuery,
    ExtractQuery,
    SupervisionQuery,
    WarningQuery,
    PrescriptionQuery,
    RecordsLogQuery,
    TraceQuery,
):
    @strawberry.field(description="The calling patient's own record (patients only).")
    async def me(self, info: strawberry.Info) -> Person | None:
        ctx = info.context
        if not ctx.is_patient or not ctx.principal.person_ref:
            raise forbidden("`me` is for patient tokens; other roles use `person`")
        rows = await ctx.load(ctx.loaders.persons, ctx.principal.person_ref, info)
        return await person_from_rows(info, rows, ctx.principal.person_ref)

    @strawberry.field(
        description="One person, by national ID number or by personId (exactly "
        "one). Always a Person, whether or not a bureau knows them: each field is what the "
        "policy lets the caller read (null for a person no bureau knows)."
    )
    async def person(
        self,
        info: strawberry.Info,
        id_number: str | None = None,
        person_id: strawberry.ID | None = None,
    ) -> Person | None:
        ctx = info.context
        if (id_number is None) == (person_id is None):
            raise bad_input(
                "give exactly one of idNumber and personId",
                [{"path": ["idNumber"], "reason": "give exactly one of idNumber and personId"}],
            )
        if id_number is not None:
            if problem := codes.validate_id_number(id_number):
                # The reason never repeats the submitted value: it is personal.
                raise bad_input(f"idNumber: {problem}", [{"path": ["idNumber"], "reason": problem}])
            # During a blind-index rotation both the new and the previous index are valid.
            candidates = ctx.indexer.id_number_candidates(id_number)
            found = await ctx.loaders.persons_by_id_bidx.load_many(candidates)
            if ctx.failures:
                ctx.attribute_failures(info)
            rows = [row for group in found for row in group]
            # The pseudonym is the same whether or not a bureau knows the number: the answer
            # below does not depend on it.
            ref = rows[0]["person_ref"] if rows else ctx.indexer.person_ref(id_number)
        else:
            ref = str(person_id)
        if ctx.is_patient and ref != ctx.principal.person_ref:
            raise forbidden("a patient may only read their own record")
        rows = await ctx.load(ctx.loaders.persons, ref, info)
        return await person_from_rows(info, rows, ref)

    @strawberry.field(
        description="A person's lab and imaging results from every hospital, "
        "newest first. " + PAGE_ARGS
    )
    async def test_results(
        self,
        info: strawberry.Info,
        person_id: strawberry.ID,
        category: TestCategory | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[TestResult]:
        ref = _own_person_only(info, str(person_id))

        def keep(r: Row) -> bool:
            at = _moment(r["collected_at"])
            return (
                (category is None or r["category"] == category.value)
                and (since is None or at >= _moment(since))
                and (until is None or at < _moment(until))
            )

        # One person's results, loaded whole: no row count, cursor or hasNextPage can tell a
        # caller who may see none of them whether the person exists or has any.
        return await person_list(
            info,
            info.context.loaders.test_results,
            ref,
            TEST_RESULT,
            lambda r: (r["collected_at"], r["result_id"]),
            (datetime, str),
            first,
            after,
            keep,
        )

    @strawberry.field(description="Cross-region filings (备案), newest first. " + PAGE_ARGS)
    async def filings(
        self,
        info: strawberry.Info,
        person_id: strawberry.ID | None = None,
        insured_region: str | None = None,
        destination: str | None = None,
        status: FilingStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Filing]:
        problems: list[dict] = []
        _check_region("insuredRegion", insured_region, problems)
        _check_region("destination", destination, problems)
        _raise_if(problems)
        ref = _own_person_only(info, None if person_id is None else str(person_id))
        if ref is not None:

            def keep(r: Row) -> bool:
                return (
                    (not insured_region or _within(r["insuplc_admdvs"], insured_region))
                    and (not destination or _within(r["mdtrtarea_admvs"], destination))
                    and (status is None or r["status"] == status.value)
                )

            return await person_list(
                info,
                info.context.loaders.filings,
                ref,
                FILING,
                lambda r: (r["filed_at"], r["filing_id"]),
                (datetime, str),
                first,
                after,
                keep,
            )
        table = platform.Filing.__table__

        def where(t: Table) -> list:
            clauses = []
            if insured_region:
                clauses.append(t.c.insuplc_admdvs.startswith(region_prefix(insured_region)))
            if destination:
                clauses.append(t.c.mdtrtarea_admvs.startswith(region_prefix(destination)))
            if status is not None:
                clauses.append(t.c.status == status.value)
            return clauses

        rows, limit = await _paged(
            info,
            info.context.registry.of_kind("platform"),
            lambda _s: table,
            where,
            ("filed_at", "filing_id"),
            (datetime, str),
            True,
            first,
            after,
        )
        return await _visible_page(info, FILING, rows, limit, ("filed_at", "filing_id"), after)

    @strawberry.field(
        description="Settlements from every bureau and the national platform, "
        "newest first. " + PAGE_ARGS
    )
    async def settlements(
        self,
        info: strawberry.Info,
        filter: SettlementFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Settlement]:
        f = filter or SettlementFilter()
        problems: list[dict] = []
        _check_region("insuredRegion", f.insured_region, problems)
        _check_region("treatmentRegion", f.treatment_region, problems)
        if f.institution_code and (p := codes.validate_institution(f.institution_code)):
            problems.append({"path": ["filter", "institutionCode"], "reason": p})
        if f.settled_from and f.settled_before and f.settled_from >= f.settled_before:
            problems.append(
                {"path": ["filter", "settledBefore"], "reason": "must be after settledFrom"}
            )
        _raise_if(problems)
        ref = _own_person_only(info, None if f.person_id is None else str(f.person_id))
        if ref is not None:
            return await _person_settlements(info, f, ref, first, after)
        registry = info.context.registry
        sources: list[Source] = []
        if f.cross_province is not True:
            sources += registry.of_kind("bureau")
        if f.cross_province is not False:
            sources += registry.of_kind("platform")

        def table_of(source: Source) -> Table:
            return (
                platform.CrossSettlement.__table__
                if source.spec.kind == "platform"
                else bureau.Settlement.__table__
            )

        def where(t: Table) -> list:
            clauses = []
            if f.insured_region:
                clauses.append(t.c.insuplc_admdvs.startswith(region_prefix(f.insured_region)))
            if f.treatment_region:
                clauses.append(t.c.mdtrtarea_admvs.startswith(region_prefix(f.treatment_region)))
            if f.settled_from:
                clauses.append(t.c.setl_time >= f.settled_from)
            if f.settled_before:
                clauses.append(t.c.setl_time < f.settled_before)
            if f.medical_type:
                clauses.append(t.c.med_type == f.medical_type.value)
            if f.institution_code:
                clauses.append(t.c.institution_code == f.institution_code)
            if f.cross_province is False and "cross_province" in t.c:
                clauses.append(t.c.cross_province.is_(False))
            return clauses

        rows, limit = await _paged(
            info,
            sources,
            table_of,
            where,
            ("setl_time", "setl_id"),
            (datetime, str),
            True,
            first,
            after,
        )
        return await _visible_page(info, SETTLEMENT, rows, limit, ("setl_time", "setl_id"), after)

    @strawberry.field(
        description="Designated institutions from the directory, by code. " + PAGE_ARGS
    )
    async def institutions(
        self,
        info: strawberry.Info,
        region: str | None = None,
        kind: InstitutionKind | None = None,
        level: InstitutionLevel | None = None,
        internet_hospital: bool | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Institution]:
        problems: list[dict] = []
        _check_region("region", region, problems)
        _raise_if(problems)
        source = info.context.registry.directory()
        table = directory.Institution.__table__

        def where(t: Table) -> list:
            clauses = []
            if region:
                clauses.append(t.c.region.startswith(region_prefix(region)))
            if kind is not None:
                clauses.append(t.c.kind == kind.value)
            if level is not None:
                clauses.append(t.c.level == level.value)
            if internet_hospital is not None:
                clauses.append(t.c.internet_hospital.is_(internet_hospital))
            return clauses

        rows, limit = await _paged(
            info,
            [source] if source else [],
            lambda _s: table,
            where,
            ("code",),
            (str,),
            False,
            first,
            after,
        )
        return connection([((r["code"],), Institution.from_row(r)) for r in rows], limit, after)
