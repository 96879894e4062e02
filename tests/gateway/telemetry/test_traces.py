"""Spans of a cloud-record read, captured with the SDK's in-memory exporter: the request's
server span, the GraphQL operation with parsing, validation and execution, one span per
source fetch, the audit append, all in one trace; a caller's traceparent is continued (a
router calling a subgraph), and the trace reaches a peer gateway over HTTP."""

from __future__ import annotations

import pytest
from graphql import parse
from opentelemetry.trace import SpanKind
from sqlalchemy import event

from gateway.app import build_services
from gateway.telemetry.shape import shape_hash
from tests.support.federation import RECENT_VISIT, Federation, make_id_number
from tests.support.tracing import memory_spans, trust

RECORD = """query CloudRecord($id: ID!) { person(personId: $id) { name
  cloudRecord { visits(first: 5) { nodes { visitType } } testResults { nodes { itemName } } }
} }"""
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(seq=777), "赵六")
    await fed.add_visits(ref, 2, begin=RECENT_VISIT)
    await fed.add_result(ref)
    return fed, ref


async def test_a_cloud_record_read_is_one_trace_with_a_span_per_source(world):
    fed, ref = world
    services = build_services(fed.settings)
    sources = [s for s in services.registry if s.reader is not None]
    ran = dict.fromkeys((s.name for s in sources), 0)
    for source in sources:  # the statements through each engine, counted apart

        def one(*_, name=source.name):
            ran[name] += 1

        event.listen(source.engine.sync_engine, "before_cursor_execute", one)
    with memory_spans() as spans:
        app = fed.app(services)
        async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
            before = {s.name: s.reader.statements for s in sources}
            response = await c.post("/graphql", json={"query": RECORD, "variables": {"id": ref}})
            for s in sources:  # and the keyed reads, which bypass the engine
                ran[s.name] += s.reader.statements - before[s.name]
        finished = spans.get_finished_spans()
    assert response.status_code == 200
    server = [s for s in finished if s.name == "query CloudRecord" and s.parent is None]
    assert len(server) == 1, [s.name for s in finished]
    trace_id = server[0].context.trace_id
    mine = [s for s in finished if s.context.trace_id == trace_id]
    names = [s.name for s in mine]
    for name in ("GraphQL Parsing", "GraphQL Validation", "GraphQL Execution", "audit append"):
        assert name in names, names
    operation = server[0]  # the operation span, named after the GraphQL conventions
    assert operation.attributes["graphql.operation.name"] == "CloudRecord"
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.attributes["graphql.document.hash"].startswith("sha256:")
    parse = next(s for s in mine if s.name == "GraphQL Parsing")
    assert parse.parent.span_id == operation.context.span_id
    assert all("query" not in s.attributes for s in mine)  # never the document text
    fetches = [s for s in mine if s.name.startswith("source ")]
    sources = {s.attributes["medfed.source.name"] for s in fetches}
    assert {"bureau-330000", "hospital-h33010600001"} <= sources, sources
    # Each fetch's own statements, though a record's fetches run at once: summed per source
    # they are what that source ran in the request (keyed reads and engine statements).
    counted: dict[str, int] = {}
    for span in fetches:
        name = span.attributes["medfed.source.name"]
        assert span.attributes["medfed.source.statements"] >= 1, name
        counted[name] = counted.get(name, 0) + span.attributes["medfed.source.statements"]
    assert counted == {name: n for name, n in ran.items() if n}, (counted, ran)
    for span in fetches:
        assert span.attributes["medfed.source.outcome"] == "ok"
        assert span.attributes["medfed.source.kind"] in {
            "bureau",
            "hospital",
            "pharmacy",
            "platform",
            "directory",
        }
    assert server[0].attributes["http.response.status_code"] == 200
    statements = [s.attributes["db.statement"] for s in mine if "db.statement" in s.attributes]
    assert any("FROM consents" in text for text in statements), statements
    assert ref not in " ".join(statements)  # bound parameters, never their values


async def test_the_span_names_its_document_even_once_the_metric_labels_are_capped(
    world, monkeypatch
):
    from gateway.telemetry import names

    fed, ref = world
    full = names.OperationLabels(limit=0)  # as in a long-lived process with many documents
    monkeypatch.setattr(names, "LABELS", full)
    shape = shape_hash(parse(RECORD))
    assert names.operation_label(None, shape) == names.OTHER  # the metrics' label is capped
    with memory_spans() as spans:
        async with fed.client(fed.app(), fed.token("clinician", "H33010600001"), "TREATMENT") as c:
            await c.post("/graphql", json={"query": RECORD, "variables": {"id": ref}})
        finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind == SpanKind.SERVER and s.parent is None]
    assert server.attributes["graphql.document.hash"] == shape


async def test_a_subgraph_continues_the_routers_trace(world):
    fed, _ = world
    trust(fed, ["127.0.0.1"])  # the router
    with memory_spans() as spans:
        app = fed.subgraph_app("results")
        async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
            response = await c.post(
                "/graphql",
                json={"query": "query Probe { __typename }"},
                headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"},
            )
        assert response.status_code == 200
        server = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
        assert len(server) == 1
        assert format(server[0].context.trace_id, "032x") == TRACE_ID
        assert format(server[0].parent.span_id, "016x") == PARENT
        # Control: without the header the span starts its own trace.
        spans.clear()
        async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
            await c.post("/graphql", json={"query": "query Probe { __typename }"})
        (alone,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
        assert alone.parent is None and format(alone.context.trace_id, "032x") != TRACE_ID


def test_the_trace_reaches_a_peer_gateway(tmp_path):
    """The local gateway in process (its spans in memory) reads a peer ``medfed serve``
    process whose JSON access line names the trace id it continued from ``traceparent``."""
    import asyncio
    import dataclasses

    from gateway.app import build_services, create_app
    from gateway.config import load_settings
    from tests.support import REPO
    from tests.support.peer import RECORD, peer_source, populate
    from tests.support.served import serve

    local_dir, peer_dir = tmp_path / "local", tmp_path / "peer"
    local_dir.mkdir(), peer_dir.mkdir()
    facts = populate(local_dir, peer_dir)
    token_file = local_dir / "peer.token"
    token_file.write_text(facts["token"])
    peer_config = peer_dir / "medfed.toml"
    peer_config.write_text(
        (REPO / "medfed.toml").read_text()
        + '\n[telemetry]\ntraces = "console"\ntrusted_trace_callers = ["127.0.0.1"]\n'
    )
    with memory_spans() as spans:
        with serve(peer_dir, config=peer_config) as peer:
            config = local_dir / "medfed-peer.toml"
            config.write_text(
                (REPO / "medfed.toml").read_text() + peer_source(peer.url, token_file)
            )
            settings = dataclasses.replace(load_settings(config, data_dir=local_dir, env={}))

            async def ask() -> dict:
                import httpx

                services = build_services(settings)
                app = create_app(settings, services)
                headers = {
                    "Authorization": f"Bearer {facts['caller']}",
                    "X-Purpose-Of-Use": "TREATMENT",
                }
                try:
                    async with httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app),
                        base_url="http://medfed.test",
                        headers=headers,
                    ) as c:
                        response = await c.post(
                            "/graphql", json={"query": RECORD, "variables": {"p": facts["ref"]}}
                        )
                finally:
                    from gateway.audit_http import RECORDER

                    await services.extras[RECORDER].close()
                    await services.registry.dispose()
                return response.json()

            answer = asyncio.run(ask())
            assert "errors" not in answer, answer
        finished = spans.get_finished_spans()
        fetches = [s for s in finished if s.name == "source peer-sd"]
        assert fetches, [s.name for s in finished]
        trace_id = format(fetches[0].context.trace_id, "032x")
        for fetch in fetches:
            assert fetch.attributes["medfed.source.kind"] == "peer"
            assert fetch.attributes["medfed.source.outcome"] == "ok"
            assert format(fetch.context.trace_id, "032x") == trace_id  # one request, one trace
            calls = [
                s
                for s in finished
                if s.kind is SpanKind.CLIENT
                and s.parent
                and s.parent.span_id == fetch.context.span_id
            ]
            assert calls, "each peer call is an httpx client span under its fetch"
        access = [
            r for r in peer.records() if r["logger"] == "medfed.access" and r["path"] == "/graphql"
        ]
        assert len(access) == len(fetches)
        assert {r["trace_id"] for r in access} == {trace_id}  # the peer continued our trace
