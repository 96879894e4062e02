"""A caller's ``traceparent`` is continued only from a trusted caller (a router, a peer
gateway: ``[telemetry] trusted_trace_callers``); anyone else's request starts a trace of its
own, sampled by the gateway's ratio, with the caller's context kept as a span link. So a
client can neither choose the trace id its requests are filed under nor force them to be
sampled."""

from __future__ import annotations

import json

import httpx
import pytest
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.trace import SpanKind

from tests.support import REPO
from tests.support.federation import Federation
from tests.support.served import serve
from tests.support.tracing import memory_spans, trust

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "00f067aa0ba902b7"
PROBE = {"query": "query Probe { __typename }"}


def traceparent(trace_id: str = TRACE_ID) -> dict[str, str]:
    return {"traceparent": f"00-{trace_id}-{PARENT}-01"}  # sampled


async def server_span(fed, spans, trusted: list[str] | None):
    trust(fed, trusted or [])
    spans.clear()
    async with fed.client(fed.app(), fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        response = await c.post("/graphql", json=PROBE, headers=traceparent())
    assert response.status_code == 200
    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    return server


async def test_an_untrusted_callers_trace_is_linked_and_a_trusted_ones_continued(data_dir):
    """The test client connects from 127.0.0.1."""
    fed = await Federation(data_dir).setup()
    with memory_spans() as spans:
        for listed in (None, ["10.0.0.0/8", "127.0.0.2"]):  # nobody; others than this caller
            alone = await server_span(fed, spans, listed)
            assert alone.parent is None, listed
            assert format(alone.context.trace_id, "032x") != TRACE_ID
            (link,) = alone.links
            assert format(link.context.trace_id, "032x") == TRACE_ID
            assert format(link.context.span_id, "016x") == PARENT
        for listed in (["127.0.0.1"], ["127.0.0.0/8"], ["::1", "127.0.0.0/24"]):
            continued = await server_span(fed, spans, listed)
            assert format(continued.context.trace_id, "032x") == TRACE_ID, listed
            assert format(continued.parent.span_id, "016x") == PARENT
            assert not continued.links


def spans_printed(stdout: str) -> list[dict]:
    """The console exporter's output: one JSON object per span, pretty-printed."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := stdout.find("{", at)) != -1:
        span, at = decoder.raw_decode(stdout, start)
        found.append(span)
    return found


@pytest.mark.slow
async def test_a_client_cannot_force_sampling_but_a_trusted_router_can(data_dir):
    """A served gateway sampling no new trace (``sample_ratio = 0``) that trusts 127.0.0.2:
    a sampled ``traceparent`` from 127.0.0.1 is not followed (the access line names a trace
    of the gateway's own, and no span is exported); the same from 127.0.0.2 is (the access
    line names the caller's trace, and its spans are exported)."""
    fed = await Federation(data_dir).setup()
    config = data_dir / "medfed-trust.toml"
    config.write_text(
        (REPO / "medfed.toml").read_text()
        + '\n[telemetry]\ntraces = "console"\nsample_ratio = 0.0\n'
        'trusted_trace_callers = ["127.0.0.2"]\n'
    )
    token = fed.token("clinician", "H33010600001")
    headers = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "TREATMENT"}
    answered = {}
    with serve(data_dir, config=config) as served:
        for source, trace_id in (("127.0.0.1", TRACE_ID), ("127.0.0.2", OTHER_TRACE)):
            transport = httpx.AsyncHTTPTransport(local_address=source)
            # This process's httpx may be instrumented (an earlier test's tracer provider):
            # it would replace the header with a traceparent of its own.
            with suppress_http_instrumentation():
                async with httpx.AsyncClient(base_url=served.url, transport=transport) as c:
                    response = await c.post(
                        "/graphql", json=PROBE, headers=headers | traceparent(trace_id), timeout=20
                    )
            assert response.status_code == 200
            answered[source] = response.headers["x-request-id"]
    # Stopped: the batching processor flushed its queue on the way out.
    access = {r["request_id"]: r for r in served.records() if r["logger"] == "medfed.access"}
    untrusted, trusted = access[answered["127.0.0.1"]], access[answered["127.0.0.2"]]
    assert untrusted["trace_id"] not in (None, TRACE_ID)
    assert trusted["trace_id"] == OTHER_TRACE
    stdout = served.stderr.with_suffix(".stdout").read_text()
    exported = {span["context"]["trace_id"] for span in spans_printed(stdout)}
    assert f"0x{OTHER_TRACE}" in exported  # the control: the trusted caller's spans left
    assert exported == {f"0x{OTHER_TRACE}"}, exported  # nothing of the untrusted request
