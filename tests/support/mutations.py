"""Helpers for the mutation tests: a federation with one known person, row counts at any
source or in the gateway database, and the shape of a BAD_USER_INPUT answer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from connectors.sql.engine import create_source_engine
from tests.support.federation import Federation, gql

RECENT = (datetime.now() - timedelta(days=2)).replace(microsecond=0)  # safely in the past


async def count(fed: Federation, source: str, model: Any, **where: Any) -> int:
    """Rows of ``model`` at ``source`` (``"gateway"`` for the gateway's own database)."""
    spec = fed.settings.gateway_spec if source == "gateway" else fed.settings.source(source)
    table = getattr(model, "__table__", model)
    engine = create_source_engine(spec)
    try:
        async with engine.connect() as conn:
            stmt = select(func.count()).select_from(table)
            for column, value in where.items():
                stmt = stmt.where(table.c[column] == value)
            return (await conn.execute(stmt)).scalar_one()
    finally:
        await engine.dispose()


async def rows(fed: Federation, source: str, model: Any, **where: Any) -> list[dict]:
    spec = fed.settings.gateway_spec if source == "gateway" else fed.settings.source(source)
    table = getattr(model, "__table__", model)
    engine = create_source_engine(spec)
    try:
        async with engine.connect() as conn:
            stmt = select(table)
            for column, value in where.items():
                stmt = stmt.where(table.c[column] == value)
            return [dict(r._mapping) for r in await conn.execute(stmt)]
    finally:
        await engine.dispose()


def only_error(body: dict) -> dict:
    assert body.get("errors"), body
    assert len(body["errors"]) == 1, body["errors"]
    return body["errors"][0]


def problem_paths(body: dict) -> set[tuple]:
    """The paths of one BAD_USER_INPUT error, as tuples."""
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return {tuple(p["path"]) for p in error["extensions"]["problems"]}


def code(body: dict) -> str:
    return only_error(body)["extensions"]["code"]


async def run(
    fed: Federation, app: Any, token: str, purpose: str, query: str, variables: dict
) -> dict:
    async with fed.client(app, token, purpose) as client:
        return await gql(client, query, variables)


FILE_FOR_CARE = """mutation($key: String!, $input: FileForCrossRegionCareInput!) {
  fileForCrossRegionCare(idempotencyKey: $key, input: $input) { filing { filingId } } }"""


async def file_for_care(
    fed: Federation, app: Any, ref: str, insured: str = "220102", destination: str = "330000"
) -> str:
    """File a person for temporary care elsewhere, as the patient does in the app, valid
    from ten days before RECENT to eighty days after."""
    token = fed.token("patient", insured, person=ref)
    body = await run(
        fed,
        app,
        token,
        "PATIENT_ACCESS",
        FILE_FOR_CARE,
        {
            "key": "filing",
            "input": {
                "insuredRegion": insured,
                "destination": destination,
                "category": "TEMPORARY",
                "channel": "APP",
                "validFrom": (RECENT.date() - timedelta(days=10)).isoformat(),
                "validUntil": (RECENT.date() + timedelta(days=80)).isoformat(),
            },
        },
    )
    assert "errors" not in body, body
    return body["data"]["fileForCrossRegionCare"]["filing"]["filingId"]
