"""Nothing personal leaves through telemetry: every attack of the adversarial world, the
treating hospital's legitimate read and the patient's own read of the README's tour run with
tracing on (the SDK's in-memory exporter behind the gateway's redacting processor), every
log record formatted as the JSON handler writes it, and the metrics scraped; none of the
victim's plain or masked values, nor their personId, appears in a span (name, attribute,
event, status), a metric sample or a log line. The values did pass through the process: the
legitimate reads answer them (the control that the search could find them)."""

from __future__ import annotations

import io
import logging

from gateway.edge.logs import JsonFormatter
from gateway.telemetry.metrics import exposition
from tests.support.adversarial import (
    ATTACKERS,
    ATTACKS,
    DIAGNOSIS,
    FINDINGS,
    NAME,
    VICTIM_ID,
    leaked,
    masked_secrets,
    post,
    secrets,
)
from tests.support.federation import make_id_number
from tests.support.tracing import memory_spans

TOUR = """{ me { name insuredRegions cloudRecord { visits(first: 3) { nodes { visitType
  beginDate diagnosisCodes diagnosisText institution { name level } } } settlements(first: 3) {
  nodes { settledAt total fundPay cashPay crossProvince } } } } }"""
TREATING = """query Treating($id: ID!) { person(personId: $id) { name idNumber phone address
  cloudRecord { visits { nodes { diagnosisText } } testResults { nodes { findings } } } } }"""


def span_text(span) -> str:
    parts = [span.name, repr(dict(span.attributes or {})), span.status.description or ""]
    for event in span.events:
        parts += [event.name, repr(dict(event.attributes or {}))]
    return "\n".join(parts)


def found(text: str, values: list[str]) -> list[str]:
    return [value for value in values if leaked(text, value)]


async def test_no_personal_value_in_any_span_label_or_log_line(world):
    fed, ref, app = world
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    answers = []
    try:
        with memory_spans() as spans:
            for role, org, purposes in ATTACKERS:
                other = make_id_number(seq=1)  # a patient attacks as someone else
                person = fed.indexer.person_ref(other) if role == "patient" else None
                for name, (query, extra) in ATTACKS.items():
                    operation = "Attack" if name == "two operations" else None
                    variables = {"id": ref, "n": VICTIM_ID, **extra}
                    await post(
                        fed,
                        app,
                        role,
                        org,
                        purposes,
                        query,
                        variables,
                        person=person,
                        operation=operation,
                    )
            treating = await post(
                fed, app, "clinician", "H37010200003", ["TREATMENT"], TREATING, {"id": ref}
            )
            own = await post(fed, app, "patient", "370102", None, TOUR, {}, person=ref)
            answers = [treating.text, own.text]
            finished = list(spans.get_finished_spans())
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    values = [*secrets(), *masked_secrets(), ref]
    # The control: the legitimate reads carried the victim's values through this process.
    assert found(answers[0], [NAME, DIAGNOSIS, FINDINGS, *masked_secrets()[1:]]) == [
        NAME,
        DIAGNOSIS,
        FINDINGS,
        *masked_secrets()[1:],
    ], answers[0][:300]
    assert leaked(answers[1], NAME), answers[1][:300]
    assert len(finished) > 100 and any(s.name.startswith("source ") for s in finished)
    for span in finished:
        assert not found(span_text(span), values), (span.name, found(span_text(span), values))
    metrics = exposition().decode()
    assert "medfed_requests_total" in metrics
    assert not found(metrics, values)
    lines = stream.getvalue().splitlines()
    assert any('"medfed.access"' in line for line in lines), "the access log wrote nothing"
    for line in lines:
        assert not found(line, values), line


def test_the_filter_scrubs_what_a_library_might_add():
    """Positive control of the span filter: values planted in attributes, an event and the
    status come out redacted, and the harmless ones stay."""
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    with memory_spans() as spans:
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span(f"lookup {NAME}") as span:
            span.set_attribute("db.statement", f"SELECT 1 WHERE id = '{VICTIM_ID}'")
            span.set_attribute("peer", "bureau-370000")
            span.set_attribute("person", "9f86d081884c7d659a2feaa0c55ad015")
            span.add_event("exception", {"exception.type": "X", "exception.message": NAME})
            span.set_status(Status(StatusCode.ERROR, f"no row for {NAME}"))
        (done,) = spans.get_finished_spans()
    text = span_text(done)
    assert not found(text, [NAME, VICTIM_ID, "9f86d081884c7d659a2feaa0c55ad015"]), text
    assert done.attributes["peer"] == "bureau-370000"
    assert done.events[0].attributes == {"exception.type": "X"}
    assert "(redacted)" in done.attributes["db.statement"]
