"""The source-fetch observer installed into :mod:`connectors.observe`: one span per fetch
(source, kind, statements, rows, outcome), its latency, its errors by stable reason, and the
source's health as the guard or the peer's breaker sees it after the fetch."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from connectors.health import reason_of
from connectors.observe import Fetch
from gateway.telemetry import metrics

tracer = trace.get_tracer("medfed.sources")


def kind_of(source: Any) -> str:
    return getattr(getattr(source, "spec", None), "kind", None) or "unknown"


def state_of(source: Any) -> int:
    """0 healthy, 1 half-open, 2 down: the SQL guard's view or the peer breaker's."""
    client = getattr(source, "client", None)
    if client is not None and getattr(client, "breaker", None) is not None:
        return metrics.STATE_VALUES.get(client.breaker.snapshot()["breaker"], 2)
    health = getattr(source, "health", None)
    if health is None:
        return 0
    return 0 if health.available else 2


@contextlib.contextmanager
def observe_fetch(fetch: Fetch) -> Iterator[None]:
    name, kind = fetch.source.name, kind_of(fetch.source)
    started = time.perf_counter()
    outcome = "ok"
    with tracer.start_as_current_span(
        f"source {name}",
        kind=SpanKind.CLIENT,
        attributes={"medfed.source.name": name, "medfed.source.kind": kind},
        record_exception=False,  # an exception's text may quote a row
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except asyncio.CancelledError:
            outcome = "CANCELLED"
            raise
        except BaseException as exc:
            outcome = str(reason_of(exc))
            metrics.SOURCE_ERRORS.labels(name, outcome).inc()
            span.set_status(Status(StatusCode.ERROR, outcome))
            raise
        finally:
            span.set_attribute("medfed.source.outcome", outcome)
            if fetch.rows is not None:
                span.set_attribute("medfed.source.rows", fetch.rows)
            span.set_attribute("medfed.source.statements", fetch.statements)
            metrics.SOURCE_SECONDS.labels(name, kind, outcome).observe(
                time.perf_counter() - started
            )
            metrics.SOURCE_STATE.labels(name).set(state_of(fetch.source))
