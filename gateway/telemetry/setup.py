"""``instrument``: what ``create_app`` calls once, last, to put telemetry on an app: the
outermost middleware, the GraphQL extensions, the source-fetch observer, the audit
recorder's timing and, in the app's lifespan, the gauge sampler."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.applications import Starlette

from connectors import observe
from gateway.telemetry import metrics
from gateway.telemetry.audit import instrument_recorder, watch_checkpoints
from gateway.telemetry.extension import TelemetryExtension
from gateway.telemetry.middleware import TelemetryMiddleware
from gateway.telemetry.sampler import sample_forever
from gateway.telemetry.sources import observe_fetch
from gateway.telemetry.trust import TraceTrust


def add_extensions(schema: Any, *extensions: type) -> None:
    """Appends schema extensions (classes) to a built Strawberry schema, once each."""
    present = tuple(schema.extensions)
    schema.extensions = present + tuple(e for e in extensions if e not in present)


def instrument(
    app: Starlette, schema: Any, services: Any, recorder: Any | None, settings: Any
) -> Starlette:
    from gateway.telemetry.tracing import configure_tracing, schema_extensions, trace_engines

    telemetry = settings.config.telemetry
    configure_tracing(telemetry)  # once per process; off by default
    trace_engines(
        [s.engine for s in services.registry]
        + ([services.gateway_engine] if services.gateway_engine is not None else [])
    )
    app.add_middleware(TelemetryMiddleware, trust=TraceTrust(telemetry.trusted_trace_callers))
    add_extensions(schema, TelemetryExtension, *schema_extensions())
    observe.install(observe_fetch)
    if recorder is not None:
        instrument_recorder(recorder)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Starlette):
        async with inner(started) as state:
            sampler = asyncio.create_task(sample_forever(services))
            if recorder is not None:
                with contextlib.suppress(Exception):  # the audit log may not be open yet
                    await watch_checkpoints(recorder)
            try:
                yield state
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
                metrics.process_exited()

    app.router.lifespan_context = lifespan
    return app
