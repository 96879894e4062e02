"""The insured person (参保人) and their lifetime cloud record (医保云档案)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import strawberry

from schema.enums import Gender, TestCategory, VisitType, enum_or_none
from schema.errors import forbidden
from schema.pagination import Connection, connection, decode_cursor, page_in_memory, page_size
from schema.projection import F, Projection, col, enc
from schema.selection import asks_edges, requested, requested_nodes
from schema.types.common import Row, field, iso_date
from schema.types.filings import FILING, Filing
from schema.types.records import (
    DRUG_PURCHASE,
    ENROLLMENT,
    PRESCRIPTION,
    SETTLEMENT,
    VISIT,
    DrugPurchase,
    Enrollment,
    Prescription,
    Settlement,
    Visit,
)
from schema.types.results import TEST_RESULT, TestResult

PAGE_ARGS = "first: at most 100 (default 20); after: a cursor from pageInfo.endCursor."


async def person_list(
    info,
    loader,
    ref: str,
    projection: Projection,
    key,
    shape,
    first: int | None,
    after: str | None,
    keep=None,
    order: tuple[str, ...] | None = None,
):
    """A page of one person's rows from every source, ``hasNextPage`` and cursors counting
    visible rows only.

    Where the caller sees all of the person's rows or none alike (``Projection.rows_alike``:
    the person's own record, a treating or consented institution, any caller with no row
    relation), and nothing but the sort filters the list (no ``keep``), the page is cut in
    SQL: each source answers its newest ``first + 1`` after the cursor (``order``, the
    columns of ``key``), so the cost follows the page, not the person's lifetime. Otherwise
    every row is loaded (one batched query per source, whatever the person has) and those the
    caller may not see are dropped before paging. Either way one statement per source."""
    ctx = info.context
    limit = page_size(first)
    cursor = decode_cursor(after, shape)
    loaders = loader if isinstance(loader, tuple) else (loader,)
    await ctx.prepare_relations([ref])
    if order is not None and keep is None and projection.rows_alike(ctx, ref):
        pages = [ctx.loaders.page_of(one, order) for one in loaders]
        asked = (ref, cursor, limit + 1)
        found = await asyncio.gather(*(ctx.load(one, asked, info) for one in pages))
    else:
        found = await asyncio.gather(*(ctx.load(one, ref, info) for one in loaders))
    rows = [row for group in found for row in group]
    rows = projection.keep_visible(ctx, rows)
    if keep is not None:
        rows = [r for r in rows if keep(r)]
    page = page_in_memory(rows, key, True, cursor, limit + 1)
    wanted = requested_nodes(info)
    return connection(
        [(key(r), projection.build(ctx, r, wanted)) for r in page],
        limit,
        after,
        edges=asks_edges(info),
    )


def _settlement_key(row: Row) -> tuple[datetime, str]:
    return (row["setl_time"], row["setl_id"])


@strawberry.federation.type(
    keys=["personId"],
    description="The lifetime medical-insurance record of one person (医保云档案), across every "
    "province where they were insured or treated. Every list is a page; ask for "
    "more with `after`. Each federation subgraph contributes its own lists.",
)
class CloudRecord:
    _ref: strawberry.Private[str] = None

    @strawberry.field(
        name="personId", description="The person's pseudonymous identifier (the record's key)."
    )
    def person_id(self, info: strawberry.Info) -> strawberry.ID | None:
        # The same value as Person.personId, so the same decision: otherwise a caller denied
        # the pseudonym on Person would read it here (e.g. after person(idNumber:)).
        info.context.check("Person", "personId", self._ref, None)
        return strawberry.ID(self._ref)

    @classmethod
    async def resolve_reference(cls, info: strawberry.Info, personId: strawberry.ID) -> CloudRecord:
        # `_entities` bypasses `person`/`me`: a patient reaches only their own record here too.
        ref = own_person_only(info, str(personId))
        await info.context.prepare_relations([ref])
        return CloudRecord(_ref=ref)

    @strawberry.field(description="Enrollment periods, newest first. " + PAGE_ARGS)
    async def enrollments(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Enrollment] | None:
        return await person_list(
            info,
            info.context.loaders.enrollments,
            self._ref,
            ENROLLMENT,
            lambda r: (r["begin_date"], r["enrollment_id"]),
            (date, str),
            first,
            after,
        )

    @strawberry.field(description="Visits, newest first, optionally of one type. " + PAGE_ARGS)
    async def visits(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        visit_type: VisitType | None = None,
    ) -> Connection[Visit] | None:
        keep = None if visit_type is None else (lambda r: r["visit_type"] == visit_type.value)
        return await person_list(
            info,
            info.context.loaders.visits,
            self._ref,
            VISIT,
            lambda r: (r["begin_date"], r["mdtrt_id"]),
            (date, str),
            first,
            after,
            keep,
            order=("begin_date", "mdtrt_id"),
        )

    @strawberry.field(description="E-prescriptions, newest first. " + PAGE_ARGS)
    async def prescriptions(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Prescription] | None:
        return await person_list(
            info,
            info.context.loaders.prescriptions,
            self._ref,
            PRESCRIPTION,
            lambda r: (r["issued_at"], r["rx_id"]),
            (datetime, str),
            first,
            after,
            order=("issued_at", "rx_id"),
        )

    @strawberry.field(description="Drug purchases at pharmacies (购药), newest first. " + PAGE_ARGS)
    async def drug_purchases(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[DrugPurchase] | None:
        return await person_list(
            info,
            info.context.loaders.dispensings,
            self._ref,
            DRUG_PURCHASE,
            lambda r: (r["dispensed_at"], r["dispensing_id"]),
            (datetime, str),
            first,
            after,
            order=("dispensed_at", "dispensing_id"),
        )

    @strawberry.field(
        description="Settlements in the province and cross-province, newest first. " + PAGE_ARGS
    )
    async def settlements(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Settlement] | None:
        loaders = info.context.loaders
        return await person_list(
            info,
            (loaders.settlements, loaders.cross_settlements),
            self._ref,
            SETTLEMENT,
            _settlement_key,
            (datetime, str),
            first,
            after,
            order=("setl_time", "setl_id"),
        )

    @strawberry.field(description="Cross-region filings (备案), newest first. " + PAGE_ARGS)
    async def filings(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None
    ) -> Connection[Filing] | None:
        return await person_list(
            info,
            info.context.loaders.filings,
            self._ref,
            FILING,
            lambda r: (r["filed_at"], r["filing_id"]),
            (datetime, str),
            first,
            after,
            order=("filed_at", "filing_id"),
        )

    @strawberry.field(
        description="Lab and imaging results from every hospital, newest first. " + PAGE_ARGS
    )
    async def test_results(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        category: TestCategory | None = None,
    ) -> Connection[TestResult] | None:
        return await _test_results(info, self._ref, first, after, category)


async def _test_results(
    info: strawberry.Info,
    ref: str,
    first: int | None,
    after: str | None,
    category: TestCategory | None,
) -> Connection[TestResult]:
    keep = None if category is None else (lambda r: r["category"] == category.value)
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
        order=("collected_at", "result_id"),
    )


def own_person_only(info: strawberry.Info, person_id: str) -> str:
    """Patients may only reach their own personId; other roles pass (the policy decides)."""
    ctx = info.context
    if ctx.is_patient and person_id != ctx.principal.person_ref:
        raise forbidden("a patient may only read their own record")
    return person_id


@strawberry.federation.type(
    keys=["personId"],
    description="An insured person (参保人), joined across sources by a blind index of the "
    "national ID number; `personId` is a stable pseudonym that reveals nothing.",
)
class Person:
    person_id: strawberry.ID | None = field("Federation-wide pseudonymous identifier.")
    name: str | None = field("Full name (姓名).")
    id_number: str | None = field("National citizen ID number (身份证号).")
    gender: Gender | None = field("Gender (性别).")
    birth_date: date | None = field("Date of birth (出生日期).")
    phone: str | None = field("Mobile phone number (手机号).")
    address: str | None = field("Home address (住址).")
    insured_region: str | None = field("Current insured place (参保地), GB/T 2260 code.")
    insured_regions: list[str] | None = field(
        "Every region where the person was ever insured, from every bureau."
    )
    _row: strawberry.Private[Row] = None
    _ref: strawberry.Private[str] = None

    @classmethod
    async def resolve_reference(
        cls, info: strawberry.Info, personId: strawberry.ID
    ) -> Person | None:
        # The same path as `person(personId:)`: rows through PERSON and prepare_relations.
        ref = own_person_only(info, str(personId))
        rows = await info.context.load(info.context.loaders.persons, ref, info)
        return await person_from_rows(info, rows, ref)

    @strawberry.field(description="The lifetime cloud record (医保云档案).")
    def cloud_record(self) -> CloudRecord:
        return CloudRecord(_ref=self._ref)

    @strawberry.field(
        description="Lab and imaging results from every hospital, newest first "
        "(the same list as `cloudRecord.testResults`). " + PAGE_ARGS
    )
    async def test_results(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        category: TestCategory | None = None,
    ) -> Connection[TestResult] | None:
        return await _test_results(info, self._ref, first, after, category)


PERSON = Projection(
    "Person",
    Person,
    [
        F("personId", "person_id", col("person_ref"), personal=False),
        F("name", "name", enc("persons", "name_enc", "psn_no")),
        F("idNumber", "id_number", enc("persons", "id_number_enc", "psn_no")),
        F("gender", "gender", col("gender", lambda v: enum_or_none(Gender, v))),
        F("birthDate", "birth_date", enc("persons", "birth_date_enc", "psn_no", iso_date)),
        F("phone", "phone", enc("persons", "phone_enc", "psn_no")),
        F("address", "address", enc("persons", "address_enc", "psn_no")),
        F("insuredRegion", "insured_region", col("insuplc_admdvs")),
        F("insuredRegions", "insured_regions", lambda _c, r: r["_all_regions"]),
    ],
    lambda row: row["person_ref"],
)


async def person_from_rows(info: strawberry.Info, rows: list[Row], ref: str) -> Person:
    """Merge one person's rows from several bureaus: identity comes from the bureau where the
    person is insured now (an active enrollment), else the most recent one.

    No existence oracle: a person no bureau knows is answered like any other, as a Person
    whose every field the policy decides for this caller on a row that holds nothing. To a
    caller with no relation that is the same object, the same FORBIDDEN_FIELD errors and the
    same statements (enrollments and relations are loaded either way) as for a person who
    exists; a caller who may read the fields (the patient themselves) sees them null."""
    ctx = info.context
    enrollments = await ctx.load(ctx.loaders.enrollments, ref, info)
    await ctx.prepare_relations([ref])
    if not rows:
        return PERSON.build(ctx, nobody(ref), requested(info))
    primary = rows[0]
    if len(rows) > 1:
        latest = max(
            enrollments, key=lambda e: (e["status"] == "ACTIVE", e["begin_date"]), default=None
        )
        if latest is not None:
            primary = next((r for r in rows if r["_source"] == latest["_source"]), primary)
    primary = {**primary, "_all_regions": sorted({r["insuplc_admdvs"] for r in rows})}
    return PERSON.build(ctx, primary, requested(info))


def nobody(ref: str) -> Row:
    """The row of a person no bureau knows: every column empty, no region, no source."""
    return {
        "person_ref": ref,
        "psn_no": None,
        "name_enc": None,
        "id_number_enc": None,
        "gender": None,
        "birth_date_enc": None,
        "phone_enc": None,
        "address_enc": None,
        "insuplc_admdvs": None,
        "_all_regions": [],
        "_source": None,
    }
