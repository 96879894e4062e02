"""The audit log's telemetry, from outside it: each append timed and counted while it
waits (the queue depth), a span per append, and the time of the last signed checkpoint."""

from __future__ import annotations

import functools
import time
from datetime import UTC
from typing import Any

from opentelemetry import trace

from gateway.telemetry import metrics

tracer = trace.get_tracer("medfed.audit")


def instrument_recorder(recorder: Any) -> None:
    """Wraps ``recorder.record`` once (an app built twice on the same services)."""
    if getattr(recorder, "_medfed_telemetry", False):
        return

    @functools.wraps(recorder.record)
    async def timed(event: Any) -> int:
        # The class's method looked up on each call, so a replaced one (a test's) is used.
        record = type(recorder).record.__get__(recorder)
        metrics.AUDIT_QUEUE.inc()
        started = time.perf_counter()
        try:
            with tracer.start_as_current_span(
                "audit append", record_exception=False, set_status_on_exception=True
            ) as span:
                index = await record(event)
                span.set_attribute("medfed.audit.kind", str(event.get("kind", "")))
                return index
        finally:
            metrics.AUDIT_QUEUE.dec()
            metrics.AUDIT_COMMIT_SECONDS.observe(time.perf_counter() - started)

    recorder.record = timed
    recorder._medfed_telemetry = True


async def watch_checkpoints(recorder: Any) -> None:
    """Chains onto the opened log's checkpoint callback (after the publisher's)."""
    audit_log = await recorder.log()
    before = audit_log.on_checkpoint
    if getattr(before, "_medfed_telemetry", False):
        return

    def checkpointed(*args: Any) -> None:
        metrics.AUDIT_CHECKPOINT.set(time.time())
        if before is not None:
            before(*args)

    checkpointed._medfed_telemetry = True  # type: ignore[attr-defined]
    audit_log.on_checkpoint = checkpointed
    latest = await audit_log.latest_checkpoint()
    created = getattr(latest, "created_at", None)
    if created is not None:  # the newest stored one, whichever process signed it
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        metrics.AUDIT_CHECKPOINT.set(created.timestamp())
