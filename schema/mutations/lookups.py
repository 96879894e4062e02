"""What a mutation needs to know from the sources before it writes, and the write itself,
with a source that fails turned into a ``SOURCE_UNAVAILABLE`` error (nothing written)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.fanout import fan_out
from connectors.health import reason_of
from connectors.registry import Source
from connectors.sql import writers
from connectors.sql.models import bureau, directory, hospital, platform
from connectors.sql.queries import Row, fetch_in
from schema.errors import SOURCE_UNAVAILABLE

T = TypeVar("T")


def unavailable(source: str, reason: str) -> GraphQLError:
    return GraphQLError(
        f"Source '{source}' did not answer ({reason}); nothing was written",
        extensions={"code": SOURCE_UNAVAILABLE, "source": source, "reason": reason},
    )


async def ask(ctx: Any, source: Source, query: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``query`` on one source within the request's deadline, behind its health guard."""
    ctx.row_sources.add(source.name)  # a mutation reads or writes this holder's data
    try:
        async with asyncio.timeout(ctx.deadline.remaining()):
            return await source.guarded(lambda: query(source.engine))
    except Exception as exc:  # any failure: name the source and a stable reason, never data
        raise unavailable(source.name, reason_of(exc)) from exc


def asker(ctx: Any) -> Callable[[Source, Callable[[AsyncEngine], Awaitable[T]]], Awaitable[T]]:
    """``ask`` bound to this request, in the shape the bulk readers of connectors take."""

    async def ask_source(source: Source, query: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        return await ask(ctx, source, query)

    return ask_source


async def ask_all(
    ctx: Any, sources: Iterable[Source], query: Callable[[AsyncEngine], Awaitable[T]]
) -> dict[str, T]:
    """Run ``query`` on every source at once; a write must not be decided on partial facts,
    so any source that fails fails the request."""
    results, failures = await fan_out(sources, lambda s: query(s.engine), ctx.deadline)
    if failures:
        raise unavailable(failures[0].source, failures[0].reason)
    return results


async def read_created(
    ctx: Any, source_name: str, table: Any, key_column: str, object_id: str
) -> Row | None:
    """Read back the row a mutation wrote, ready to build through the policy: tagged with its
    source, with the writer's relation to the person prepared (it sees what policy allows)."""
    source = ctx.registry.get(source_name)
    row = await ask(ctx, source, lambda e: writers.read_row(e, table, key_column, object_id))
    if row is None:
        return None
    row["_source"] = source.name
    await ctx.prepare_relations([row["person_ref"]])
    return row


def bureau_of(ctx: Any, province: str) -> Source | None:
    """The configured bureau of a province (330000), if any."""
    return next((s for s in ctx.registry.of_kind("bureau") if s.spec.region == province), None)


def platform_source(ctx: Any) -> Source | None:
    found = ctx.registry.of_kind("platform")
    return found[0] if found else None


def hospital_of(ctx: Any, institution: str) -> Source | None:
    return next(
        (s for s in ctx.registry.of_kind("hospital") if s.spec.institution == institution), None
    )


async def institution_row(ctx: Any, code: str) -> Row | None:
    """The directory's entry for ``code`` (None when absent or no directory is configured)."""
    source = ctx.registry.directory()
    if source is None:
        return None
    rows = await ask(
        ctx, source, lambda e: fetch_in(e, directory.Institution.__table__, "code", [code])
    )
    return rows[0] if rows else None


async def persons_at(ctx: Any, sources: Iterable[Source], ref: str) -> list[Row]:
    """The person's rows at the given bureaus, each tagged with its ``_source``."""
    found = await ask_all(
        ctx, sources, lambda e: fetch_in(e, bureau.Person.__table__, "person_ref", [ref])
    )
    return [{**row, "_source": name} for name, rows in found.items() for row in rows]


async def visit_at(ctx: Any, source: Source, visit_id: str) -> Row | None:
    rows = await ask(
        ctx, source, lambda e: fetch_in(e, bureau.Visit.__table__, "mdtrt_id", [visit_id])
    )
    return rows[0] if rows else None


async def settlements_of_visit(ctx: Any, sources: Iterable[Source], visit_id: str) -> list[Row]:
    """Settlements of a visit at the given bureaus and platform."""

    def query(source: Source):
        table = (
            platform.CrossSettlement.__table__
            if source.spec.kind == "platform"
            else bureau.Settlement.__table__
        )
        return lambda e: fetch_in(e, table, "mdtrt_id", [visit_id])

    out: list[Row] = []
    for source in sources:
        out += await ask(ctx, source, query(source))
    return out


async def filings_of(ctx: Any, source: Source, ref: str) -> list[Row]:
    return await ask(
        ctx, source, lambda e: fetch_in(e, platform.Filing.__table__, "person_ref", [ref])
    )


async def patient_at(ctx: Any, source: Source, ref: str) -> Row | None:
    """The hospital's patient-index row of a person, if the hospital knows them."""
    rows = await ask(
        ctx,
        source,
        lambda e: fetch_in(
            e, hospital.Patient.__table__, "person_ref", [ref], order_by=("patient_no",)
        ),
    )
    return rows[0] if rows else None


def decrypt_person_field(ctx: Any, row: Row, column: str) -> str:
    """A bureau person row's encrypted field, opened to copy it to another source."""
    return ctx.cipher.decrypt(
        row[column],
        source=row["_source"],
        table="persons",
        column=column,
        row_key=str(row["psn_no"]),
    )
