"""The three domain subgraphs, cut from the merged schema's types.

A subgraph keeps a subset of the fields of ``Query``, ``Mutation``, ``Person`` and
``CloudRecord``; every other type is the merged schema's own. The cut reuses the very
``StrawberryField`` objects (resolvers, arguments, descriptions), so a subgraph answers exactly
as the merged schema does, and the union of the three is the merged API (a test checks it).

``Person @key(fields: "personId")`` lives in records (identity, cloud record) and results
(``testResults``); ``CloudRecord @key(fields: "personId")`` is split across all three, so
``person { cloudRecord { visits settlements testResults } }`` reads the same through a router.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.annotation import StrawberryAnnotation
from strawberry.tools import create_type
from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition
from strawberry.types.field import StrawberryField

from schema.build import build_schema
from schema.federation.directives import annotate_protected_fields
from schema.mutations import Mutation
from schema.queries import Query
from schema.types.person import CloudRecord, Person


@dataclass(frozen=True)
class Cut:
    """Which fields (GraphQL names) of the split types one subgraph serves."""

    query: tuple[str, ...]
    mutation: tuple[str, ...]
    person: tuple[str, ...]
    cloud_record: tuple[str, ...]


# Every Query field that no other subgraph takes.
REST = ("*",)

SUBGRAPHS: Mapping[str, Cut] = {
    "records": Cut(
        query=REST,  # me, person, consents, the audit log
        mutation=(
            "grantConsent",
            "revokeConsent",
            "requestExtract",
            "approveExtract",
            "refuseExtract",
            "issuePrescription",
            "reviewPrescription",
            "circulatePrescription",
            "dispensePrescription",
            "shipPrescription",
            "deliverPrescription",
            "cancelPrescription",
        ),
        person=(
            "personId",
            "name",
            "idNumber",
            "gender",
            "birthDate",
            "phone",
            "address",
            "insuredRegion",
            "insuredRegions",
            "cloudRecord",
        ),
        cloud_record=("personId", "enrollments", "visits", "prescriptions", "drugPurchases"),
    ),
    "results": Cut(
        query=("testResults",),
        mutation=("publishTestResult",),
        person=("personId", "testResults"),
        cloud_record=("personId", "testResults"),
    ),
    "settlement": Cut(
        query=(
            "settlements",
            "filings",
            "institutions",
            "codes",
            # fund supervision: monitoring, clearings, warnings, credit records
            "fundSpending",
            "rulesHit",
            "institutionWarningRates",
            "clearings",
            "supervisionWarnings",
            "creditRecords",
        ),
        mutation=("recordSettlement", "fileForCrossRegionCare", "handleWarning"),
        person=(),
        cloud_record=("personId", "settlements", "filings"),
    ),
}


def _graphql_name(field: StrawberryField) -> str:
    if field.graphql_name:
        return field.graphql_name
    head, *rest = field.python_name.split("_")
    return head + "".join(part.title() for part in rest)


def _retarget(type_: Any, swap: Mapping[type, type]) -> Any:
    """The same field type with the split types replaced by this subgraph's cut of them."""
    if isinstance(type_, StrawberryOptional):
        return StrawberryOptional(_retarget(type_.of_type, swap))
    if isinstance(type_, StrawberryList):
        return StrawberryList(_retarget(type_.of_type, swap))
    return swap.get(type_, type_)


def _cut(cls: type, names: tuple[str, ...], swap: Mapping[type, type]) -> type | None:
    if not names:
        return None
    definition = get_object_definition(cls, strict=True)
    fields = []
    for field in definition.fields:
        if _graphql_name(field) not in names:
            continue
        mine = copy.copy(field)
        mine.type_annotation = StrawberryAnnotation(_retarget(field.type, swap))
        fields.append(mine)
    missing = set(names) - {_graphql_name(f) for f in fields}
    if missing:
        raise LookupError(f"{definition.name} has no field(s) {sorted(missing)}")
    cut = create_type(
        definition.name,
        fields,
        description=definition.description,
        directives=definition.directives,
    )
    if hasattr(cls, "resolve_reference"):
        original = cls.resolve_reference

        async def resolve_reference(info: strawberry.Info, **key: Any) -> Any:
            # The merged type's own resolution (policy included), typed as this cut so the
            # `_Entity` union knows it.
            return strawberry.cast(cut, await original(info=info, **key))

        cut.resolve_reference = staticmethod(resolve_reference)
    return cut


def subgraph_types(name: str) -> tuple[type, type | None]:
    """The Query and Mutation types of one subgraph."""
    cut = SUBGRAPHS[name]
    swap: dict[type, type] = {}
    # Leaves first: Person.cloudRecord must point at this subgraph's CloudRecord.
    record = _cut(CloudRecord, cut.cloud_record, swap)
    if record is not None:
        swap[CloudRecord] = record
    person = _cut(Person, cut.person, swap)
    if person is not None:
        swap[Person] = person
    query_names = cut.query
    if query_names == REST:
        taken = {n for other in SUBGRAPHS.values() if other.query != REST for n in other.query}
        query_names = tuple(
            _graphql_name(f)
            for f in get_object_definition(Query, strict=True).fields
            if _graphql_name(f) not in taken
        )
    query = _cut(Query, query_names, swap)
    mutation = _cut(Mutation, cut.mutation, swap)
    # Entities reachable only through `_entities` (CloudRecord in results and settlement)
    # must still be in the schema.
    extra = [t for t in (record, person) if t is not None]
    return _with_types(query, extra), mutation


def _with_types(query: type, extra: list[type]) -> type:
    query.__medfed_entities__ = extra
    return query


def build_subgraph(name: str, *, dev: bool, **options: Any) -> strawberry.Schema:
    if name not in SUBGRAPHS:
        raise KeyError(f"unknown subgraph '{name}' (one of {', '.join(SUBGRAPHS)})")
    annotate_protected_fields()
    query, mutation = subgraph_types(name)
    return build_schema(
        dev=dev, query=query, mutation=mutation, types=query.__medfed_entities__, **options
    )
