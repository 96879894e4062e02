"""Request ids: the gateway always names a request itself (unique, unpredictable); an id the
client offers is kept beside it, in the answer, the log line and the audit event, and never
replaces it. Refused requests are audited under the id the caller got back."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from gateway.edge.logs import JsonFormatter
from tests.support.audit import logged
from tests.support.federation import Federation, make_id_number

SERVER_ID = re.compile(r"^[0-9a-f]{32}$")
OFFERED = "client-chosen-id-1"


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(seq=41), "张三")
    return fed, ref


async def test_the_server_id_is_always_its_own_and_the_offered_one_is_echoed_beside_it(world):
    fed, _ = world
    token = fed.token("settlement_center", "330000")
    async with fed.client(fed.app(), token) as c:
        answers = [
            await c.post(
                "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": OFFERED}
            )
            for _ in range(3)
        ]
        plain = await c.post("/graphql", json={"query": "{ __typename }"})
        bad = await c.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"X-Request-Id": "bad id <script>"},
        )
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(SERVER_ID.match(i) for i in ids)
    assert len(set(ids)) == 3 and OFFERED not in ids  # one offered id, three server ids
    assert all(a.headers["x-client-request-id"] == OFFERED for a in answers)
    # No offer, or an unsafe one: a server id and no echo.
    for response in (plain, bad):
        assert SERVER_ID.match(response.headers["x-request-id"])
        assert "x-client-request-id" not in response.headers


@pytest.mark.parametrize(
    "headers,status,code",
    [
        ({}, 401, "UNAUTHENTICATED"),
        ({"X-Purpose-Of-Use": "UNDERWRITING"}, 403, "PURPOSE_NOT_ALLOWED"),
        ({"X-Purpose-Of-Use": "MARKETING"}, 400, "PURPOSE_UNKNOWN"),
    ],
    ids=["no token", "purpose not allowed", "unknown purpose"],
)
async def test_a_refused_request_is_audited_under_the_id_the_caller_got_back(
    world, headers, status, code
):
    fed, _ = world
    token = None if status == 401 else fed.token("clinician", "H33010600001")
    async with fed.client(fed.app(), token) as c:
        response = await c.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={**headers, "X-Request-Id": OFFERED},
        )
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == code
    events = [e for e in await logged(fed) if e["kind"] == "AUTHENTICATION"]
    assert len(events) == 1
    assert events[0]["requestId"] == response.headers["x-request-id"]
    assert events[0]["clientRequestId"] == OFFERED


async def test_an_answered_request_is_audited_under_the_server_id_with_the_offered_one(world):
    fed, ref = world
    token = fed.token("clinician", "H33010600001")
    async with fed.client(fed.app(), token, "TREATMENT") as c:
        offered = await c.post(
            "/graphql",
            json={
                "query": "query($id: ID!) { person(personId: $id) { name } }",
                "variables": {"id": ref},
            },
            headers={"X-Request-Id": OFFERED},
        )
        plain = await c.post(
            "/graphql",
            json={
                "query": "query($id: ID!) { person(personId: $id) { name } }",
                "variables": {"id": ref},
            },
        )
    events = [e for e in await logged(fed) if e["kind"] == "QUERY"]
    assert [e["requestId"] for e in events] == [
        offered.headers["x-request-id"],
        plain.headers["x-request-id"],
    ]
    assert events[0]["clientRequestId"] == OFFERED
    assert "clientRequestId" not in events[1]


async def test_log_lines_carry_both_ids(world):
    fed, _ = world
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())  # formats at emit time, while the ids are bound
    access = logging.getLogger("medfed.access")
    access.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.INFO)
    try:
        token = fed.token("settlement_center", "330000")
        async with fed.client(fed.app(), token) as c:
            response = await c.post(
                "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": OFFERED}
            )
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "the access log wrote nothing"
    assert lines[-1]["request_id"] == response.headers["x-request-id"]
    assert lines[-1]["client_request_id"] == OFFERED


async def test_the_cors_preflight_allows_sealing_and_exposes_both_ids(world):

    from gateway.app import create_app

    fed, _ = world
    settings = fed.settings.with_tables(cors={"origins": ["https://app.example.cn"]})
    async with fed.client(create_app(settings), None) as c:
        pre = await c.options(
            "/graphql",
            headers={
                "Origin": "https://app.example.cn",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-seal-to, x-request-id",
            },
        )
        answer = await c.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Origin": "https://app.example.cn", "X-Request-Id": OFFERED},
        )
    assert pre.status_code == 204
    allowed = {h.strip().lower() for h in pre.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-purpose-of-use", "x-request-id", "x-seal-to"} <= (
        allowed
    )
    exposed = {
        h.strip().lower() for h in answer.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-request-id", "x-client-request-id"} <= exposed
