"""Property-based fuzzing of the served schema (hypothesis-graphql).

Random valid and invalid queries and mutations, sent by every role through the real app
(authentication, edge, limits, policy, audit): never a 5xx, never an unexpected error in the
logs, and never a plain value of a person the caller has no relation to. ``make test`` runs a
bounded number of examples (``MEDFED_FUZZ_EXAMPLES``, default 30); ``make fuzz`` runs 2,000.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, queries
from hypothesis_graphql import nodes as gql_nodes
from starlette.testclient import TestClient

from schema.build import build_schema
from schema.mutations import Mutation
from tests.support.adversarial import ATTACKERS, leaked, secrets, world_rows
from tests.support.federation import Federation

pytestmark = pytest.mark.fuzz
EXAMPLES = int(os.environ.get("MEDFED_FUZZ_EXAMPLES", "30"))


class _Errors(logging.Handler):
    """Collects what the GraphQL layer logs as unexpected (an unhandled exception)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    data_dir.mkdir()
    fed = Federation(data_dir)
    # One principal sends every example: rate limits would only turn them into 429s.
    fed.settings = dataclasses.replace(
        fed.settings, extra={**fed.settings.extra, "limits": {"rate_limits": False}}
    )
    ref = asyncio.run(_populate(fed))
    # The attacking patient is someone else: a pseudonym that is not the victim's.
    tokens = {
        role: fed.token(
            role, org, purposes=purposes, person="1" * 32 if role == "patient" else None
        )
        for role, org, purposes in ATTACKERS
    }
    errors = _Errors()
    logger = logging.getLogger("medfed.graphql")
    logger.addHandler(errors)
    try:
        with TestClient(fed.app(), raise_server_exceptions=False) as client:
            yield client, tokens, ref, errors
    finally:
        logger.removeHandler(errors)


async def _populate(fed: Federation) -> str:
    await fed.setup()
    return await world_rows(fed)


# The graphql-core schema itself: its SDL carries federation directives a bare parser lacks.
SCHEMA = build_schema(dev=True, mutation=Mutation)._schema
# Random IDs never name the victim, so IDs are drawn from a placeholder that each example
# replaces with the victim's personId: generated queries then reach a person the attackers
# have no relation to.
PLACEHOLDER = "0" * 32


def _field(name: str, value: str) -> graphql.ObjectFieldNode:
    return graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=gql_nodes.String(value))


def _text(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Well-formed values mostly, malformed text sometimes."""
    return st.one_of(valid.map(lambda v: str(v)), st.text(max_size=12)).map(gql_nodes.String)


_custom = {
    "ID": st.sampled_from(["x", PLACEHOLDER]).map(gql_nodes.String),
    "Date": _text(st.dates().map(lambda d: d.isoformat())),
    "DateTime": _text(st.datetimes().map(lambda d: d.isoformat())),
    "Decimal": _text(
        st.decimals(
            places=2, allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9
        )
    ),
    # Entity representations aimed at the victim (and at a directory institution).
    "_Any": st.sampled_from(
        [
            [("__typename", "Person"), ("personId", PLACEHOLDER)],
            [("__typename", "CloudRecord"), ("personId", PLACEHOLDER)],
            [("__typename", "Institution"), ("code", "H37010200003")],
        ]
    ).map(lambda pairs: gql_nodes.Object([_field(k, v) for k, v in pairs])),
}
OPERATIONS = st.one_of(
    queries(SCHEMA, custom_scalars=_custom), mutations(SCHEMA, custom_scalars=_custom)
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
def test_random_operations_never_fail_or_leak(served, data):
    client, tokens, ref, errors = served
    role = data.draw(st.sampled_from(sorted(tokens)), label="role")
    operation = data.draw(OPERATIONS, label="operation").replace(PLACEHOLDER, ref)
    before = len(errors.records)
    response = client.post(
        "/graphql", json={"query": operation}, headers={"Authorization": f"Bearer {tokens[role]}"}
    )
    assert response.status_code < 500, (role, operation, response.text[:300])
    raw = response.content.decode("utf-8", "replace")
    for value in secrets():
        assert not leaked(raw, value), f"{role} leaked {value!r} with {operation}"
    new = errors.records[before:]
    assert not new, [r.getMessage() for r in new]
