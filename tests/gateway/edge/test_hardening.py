"""Hardening: every limit refuses before execution with its code, and a legitimate large
query (the cloud record with first: 100 lists) still passes; the HTTP edge; trusted
documents; rate limits in process and in Redis."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from gateway.app import create_app
from tests.support.adversarial import DEEP, PERSON_FIELDS
from tests.support.audit import logged
from tests.support.federation import Federation, make_id_number

LEGIT = f"query($id: ID!) {{ person(personId: $id) {{ {PERSON_FIELDS} {DEEP} }} }}"


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(seq=11), "张三")
    await fed.add_visits(ref, 3)
    return fed, ref


def app_with(fed, **tables):
    return create_app(fed.settings.with_tables(**tables))


def code_of(response) -> str:
    return response.json()["errors"][0]["extensions"]["code"]


async def post(fed, app, query, variables=None, role="settlement_center", org="330000", **body):
    token = fed.token(role, org)
    async with fed.client(app, token) as c:
        return await c.post("/graphql", json={"query": query, "variables": variables or {}, **body})


async def test_the_cloud_record_with_first_100_lists_passes_every_default_limit(world):
    fed, ref = world
    response = await post(fed, fed.app(), LEGIT, {"id": ref}, role="clinician", org="H33010600001")
    assert response.status_code == 200
    body = response.json()
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
    assert not codes & {"QUERY_TOO_DEEP", "QUERY_TOO_COSTLY", "TOO_MANY_TOKENS"}
    assert body["data"]["person"] is not None


LIMIT_CASES = [
    ("max_query_length", 50, "QUERY_TOO_LONG"),
    ("max_tokens", 40, "TOO_MANY_TOKENS"),
    ("max_depth", 4, "QUERY_TOO_DEEP"),
    ("max_cost", 500, "QUERY_TOO_COSTLY"),
]


@pytest.mark.parametrize("key,value,code", LIMIT_CASES, ids=[c[2] for c in LIMIT_CASES])
async def test_each_operation_limit_refuses_with_its_code(world, key, value, code):
    fed, ref = world
    response = await post(fed, app_with(fed, limits={key: value}), LEGIT, {"id": ref})
    body = response.json()
    assert body["data"] is None  # refused before anything executed
    assert code in {e["extensions"]["code"] for e in body["errors"]}


async def test_alias_bomb_and_directive_pileup_are_refused(world):
    fed, _ = world
    app = fed.app()
    bomb = "{ " + " ".join(f"a{i}: institutions {{ nodes {{ code }} }}" for i in range(31)) + " }"
    assert code_of(await post(fed, app, bomb)) == "TOO_MANY_ALIASES"
    piled = "{ institutions { nodes { code" + " @include(if: true)" * 5 + " } } }"
    assert code_of(await post(fed, app, piled)) == "TOO_MANY_DIRECTIVES"
    ok = "{ " + " ".join(f"a{i}: institutions {{ nodes {{ code }} }}" for i in range(30)) + " }"
    assert "errors" not in (await post(fed, app, ok)).json()


# The deepest path of the schema (no type refers back to an earlier one): eight fields.
DEEPEST = """query($id: ID!) { person(personId: $id) { cloudRecord { visits(first: 100) {
    edges { node { prescriptions { items { drugName } } } } } } } }"""


async def _as_patient(fed, app, ref, query, variables=None):
    token = fed.token("patient", "330106", person=ref)
    async with fed.client(app, token) as c:
        return await c.post("/graphql", json={"query": query, "variables": variables or {}})


@pytest.mark.parametrize("max_depth,refused", [(12, False), (8, False), (7, True)])
async def test_the_depth_limit_holds_at_its_boundary_on_the_deepest_query(
    world, max_depth, refused
):
    fed, ref = world
    app = app_with(fed, limits={"max_depth": max_depth})
    body = (await _as_patient(fed, app, ref, DEEPEST, {"id": ref})).json()
    if refused:
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"] == {"code": "QUERY_TOO_DEEP", "limit": 7, "found": 8}
        return
    assert "errors" not in body, body
    edges = body["data"]["person"]["cloudRecord"]["visits"]["edges"]
    drugs = [i["drugName"] for e in edges for p in e["node"]["prescriptions"] for i in p["items"]]
    assert len(edges) == 3 and drugs and all(drugs)  # answered down to the eighth level


@pytest.mark.parametrize("levels", [20, 200, 2000])
async def test_nesting_deeper_than_any_schema_path_is_refused_before_execution(world, levels):
    """Deeper than the schema goes: unknown fields (validation), the parser's nesting limit, or
    the token limit refuse it, never a 5xx, and nothing is read or logged as read."""
    fed, ref = world
    inner = "{ code }"
    for _ in range(levels):
        inner = "{ nodes " + inner + " }"
    query = "query($id: ID!) { person(personId: $id) { cloudRecord { visits " + inner + " } } }"
    response = await _as_patient(fed, fed.app(), ref, query, {"id": ref})
    assert response.status_code in (200, 400), response.status_code
    body = response.json()
    assert body.get("data") is None and body["errors"], body
    assert await logged(fed) == []  # refused before anything was read
    # Positive control: the same nesting stopped at a real leaf answers.
    ok = (
        "query($id: ID!) { person(personId: $id) { cloudRecord { visits { nodes { visitId } } } } }"
    )
    answer = (await _as_patient(fed, fed.app(), ref, ok, {"id": ref})).json()
    assert len(answer["data"]["person"]["cloudRecord"]["visits"]["nodes"]) == 3


async def test_huge_lists_are_refused_by_their_cost(world):
    fed, ref = world
    app = fed.app()

    def huge(copies: int) -> str:
        lists = " ".join(
            f"v{i}: visits(first: 100) {{ nodes {{ prescriptions {{ items {{ drugName "
            f"dosage }} }} }} }}"
            for i in range(copies)
        )
        return f"query($id: ID!) {{ person(personId: $id) {{ cloudRecord {{ {lists} }} }} }}"

    assert code_of(await post(fed, app, huge(10), {"id": ref})) == "QUERY_TOO_COSTLY"
    # Positive control: one such list is within the cost limit.
    body = (await post(fed, app, huge(1), {"id": ref})).json()
    assert "QUERY_TOO_COSTLY" not in str(body) and body["data"]["person"] is not None
    # `first` from a variable without a default counts as the maximum page, 100.
    by_variable = (
        "query($id: ID!, $n: Int) { person(personId: $id) { cloudRecord { "
        + " ".join(f"v{i}: visits(first: $n) {{ nodes {{ visitId }} }}" for i in range(150))
        + " } } }"
    )
    response = await post(
        fed, app_with(fed, limits={"max_aliases": 500}), by_variable, {"id": ref, "n": 1}
    )
    assert code_of(response) == "QUERY_TOO_COSTLY"


async def test_circular_fragments_are_refused_without_a_crash(world):
    fed, _ = world
    query = """{ institutions { nodes { ...A } } }
      fragment A on Institution { code ...B } fragment B on Institution { name ...A }"""
    response = await post(fed, fed.app(), query)
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert "Cannot spread fragment" in response.text


async def test_body_size_oversized_variables_and_a_batch_are_refused(world):
    fed, _ = world
    app = fed.app()
    response = await post(fed, app, "{ __typename }", {"x": "y" * 200_000})
    assert response.status_code == 413 and code_of(response) == "PAYLOAD_TOO_LARGE"
    token = fed.token("settlement_center", "330000")
    async with fed.client(app, token) as c:
        batch = await c.post("/graphql", json=[{"query": "{ __typename }"}] * 2)
    assert batch.status_code == 400 and code_of(batch) == "BATCHING_NOT_SUPPORTED"


async def test_malformed_bodies_and_wrong_content_types(world):
    fed, _ = world
    app = fed.app()
    token = fed.token("settlement_center", "330000")
    async with fed.client(app, token) as c:
        for content, ctype, status, code in [
            (b'{"query": "{ __typename }"', "application/json", 400, "MALFORMED_REQUEST"),
            (b'{"query": "\xff\xfe"}', "application/json", 400, "MALFORMED_REQUEST"),
            (b'"just a string"', "application/json", 400, "MALFORMED_REQUEST"),
            (
                b"query={__typename}",
                "application/x-www-form-urlencoded",
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (b'{"query": "{ __typename }"}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
            (b"--x\r\n", "multipart/form-data; boundary=x", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ]:
            response = await c.post("/graphql", content=content, headers={"content-type": ctype})
            assert (response.status_code, code_of(response)) == (status, code), content
        ok = await c.post(
            "/graphql",
            content=b'{"query": "{ __typename }"}',
            headers={"content-type": "application/graphql-response+json"},
        )
        assert ok.status_code == 200 and ok.json()["data"] == {"__typename": "Query"}


async def test_no_operations_over_get_and_the_edge_headers(world):
    fed, _ = world
    app = fed.app()
    token = fed.token("settlement_center", "330000")
    async with fed.client(app, token) as c:
        get = await c.get("/graphql", params={"query": "mutation { __typename }"})
        assert get.status_code == 405 and code_of(get) == "METHOD_NOT_ALLOWED"
        get = await c.get("/graphql", params={"query": "{ __typename }"})
        assert get.status_code == 405
        response = await c.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"X-Request-Id": "client-chosen-id-1"},
        )
        # Ours is always our own; the offered one comes back beside it.
        assert response.headers["x-request-id"] != "client-chosen-id-1"
        assert response.headers["x-client-request-id"] == "client-chosen-id-1"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        generated = await c.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"X-Request-Id": "bad id <script>"},
        )
        assert len(generated.headers["x-request-id"]) == 32


async def test_cors_allow_list(world):
    fed, _ = world
    app = app_with(fed, cors={"origins": ["https://app.example.cn"]})
    token = fed.token("settlement_center", "330000")
    async with fed.client(app, token) as c:
        pre = await c.options(
            "/graphql",
            headers={"Origin": "https://app.example.cn", "Access-Control-Request-Method": "POST"},
        )
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "https://app.example.cn"
        ok = await c.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Origin": "https://app.example.cn"},
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example.cn"
        evil = await c.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://evil.example"}
        )
        assert evil.status_code == 403 and code_of(evil) == "ORIGIN_NOT_ALLOWED"
        assert "access-control-allow-origin" not in evil.headers


async def test_trusted_documents_for_partner_roles(world):
    from security.documents import DocumentStore

    fed, _ = world
    app = app_with(fed, documents={"trusted_only_roles": ["researcher"]})
    text = "query Codes { institutions(first: 5) { nodes { code } } }"
    digest = hashlib.sha256(text.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    free = await post(fed, app, text, role="researcher", org="110000")
    assert free.status_code == 403 and code_of(free) == "PERSISTED_QUERY_NOT_TRUSTED"
    unknown = await post(fed, app, None, role="researcher", org="110000", extensions=persisted)
    assert code_of(unknown) == "PERSISTED_QUERY_NOT_FOUND"
    from connectors.sql.engine import create_source_engine

    engine = create_source_engine(fed.settings.gateway_spec)
    await DocumentStore(engine).add(text)
    await engine.dispose()
    ok = await post(fed, app, None, role="researcher", org="110000", extensions=persisted)
    assert ok.status_code == 200 and len(ok.json()["data"]["institutions"]["nodes"]) == 5
    mismatch = await post(
        fed, app, text + " ", role="researcher", org="110000", extensions=persisted
    )
    assert code_of(mismatch) == "PERSISTED_QUERY_HASH_MISMATCH"
    # Roles not listed still send free-form operations.
    assert (await post(fed, app, text)).json()["data"] is not None


async def test_documents_add_command(world, capsys):
    import asyncio
    import functools

    from gateway.cli import main as cli_main

    async def main(argv):  # the command runs its own event loop
        return await asyncio.to_thread(functools.partial(cli_main, argv))

    fed, _ = world
    path = fed.data_dir / "codes.graphql"
    path.write_text("query Codes { institutions { nodes { code } } }", encoding="utf-8")
    args = ["--config", "medfed.toml", "--data-dir", str(fed.data_dir)]
    assert await main([*args, "documents", "add", str(path)]) == 0
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest in capsys.readouterr().out
    assert await main([*args, "documents", "add", str(path)]) == 0
    assert "already registered" in capsys.readouterr().out
    bad = fed.data_dir / "bad.graphql"
    bad.write_text("query {", encoding="utf-8")
    assert await main([*args, "documents", "add", str(bad)]) == 2


async def rate_limited(fed, limits):
    app = app_with(fed, limits={"principal_burst": 3, "principal_rate": 0.001, **limits})
    # A subject of its own: rate-limit buckets are keyed by subject, and a Redis bucket
    # outlives the test run that filled it.
    token = fed.token("settlement_center", "330000", sub=f"rl-{uuid.uuid4().hex[:12]}")
    statuses, last = [], None
    async with app.router.lifespan_context(app), fed.client(app, token) as c:
        for _ in range(4):
            last = await c.post("/graphql", json={"query": "{ __typename }"})
            statuses.append(last.status_code)
    return statuses, last


async def test_per_principal_rate_limit_answers_429_with_retry_after(world):
    fed, _ = world
    statuses, last = await rate_limited(fed, {})
    assert statuses == [200, 200, 200, 429]
    assert code_of(last) == "RATE_LIMITED" and int(last.headers["retry-after"]) >= 1


async def test_per_organisation_rate_limit(world):
    fed, _ = world
    app = app_with(fed, limits={"org_burst": 2, "org_rate": 0.001})
    statuses = []
    for sub in range(3):  # three principals of one organisation
        token = fed.token("settlement_center", "330000")
        async with fed.client(app, token) as c:
            statuses.append(
                (await c.post("/graphql", json={"query": "{ __typename }"})).status_code
            )
    assert statuses == [200, 200, 429]


def redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.skipif(not redis_answers(), reason="no Redis answers at 127.0.0.1:6379")
async def test_rate_limit_shared_through_redis(world):
    fed, _ = world
    statuses, last = await rate_limited(fed, {"redis_url": "redis://127.0.0.1:6379/0"})
    assert statuses == [200, 200, 200, 429]
    assert last.headers["retry-after"]
