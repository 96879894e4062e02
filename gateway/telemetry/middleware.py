"""``TelemetryMiddleware``: the outermost layer. One server span per HTTP request (so the
edge's access line carries its trace id), and the request metrics once the answer is out.

The GraphQL extension (:mod:`gateway.telemetry.extension`) notes the operation and counts
its errors on the request's :class:`RequestNote`; refusals sent before GraphQL runs (the
edge, authentication, rate limits) are counted here from their small JSON bodies.
"""

from __future__ import annotations

import contextvars
import re
import time
from dataclasses import dataclass, field

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.telemetry import metrics
from gateway.telemetry.names import ANONYMOUS
from gateway.telemetry.routes import route_of
from gateway.telemetry.trust import TraceTrust

tracer = trace.get_tracer("medfed.gateway")
_REFUSAL_BODY_MAX = 4096  # refusals are a few hundred bytes; answers are not parsed
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,47}$")  # our codes; anything else is not a label


@dataclass
class RequestNote:
    operation: str = ANONYMOUS
    operation_type: str | None = None
    document_hash: str | None = None  # of the document's shape (gateway.telemetry.shape)
    errors_counted: bool = False  # the GraphQL extension counted this request's codes
    refusal_body: list[bytes] = field(default_factory=list)


NOTE: contextvars.ContextVar[RequestNote | None] = contextvars.ContextVar(
    "medfed_telemetry_note", default=None
)


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp, trust: TraceTrust | None = None) -> None:
        self.app = app
        self.trust = trust or TraceTrust()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        note = RequestNote()
        token = NOTE.set(note)
        route = route_of(scope)
        method = scope.get("method", "GET")
        # A trusted caller's traceparent continues its trace (a router, a peer gateway);
        # anyone else's is only linked (gateway.telemetry.trust).
        parent, links = self.trust.parent(scope)
        status: list[int] = []
        started = time.perf_counter()

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif (
                message["type"] == "http.response.body"
                and status
                and status[0] >= 400
                and not note.errors_counted
                and sum(map(len, note.refusal_body)) < _REFUSAL_BODY_MAX
            ):
                note.refusal_body.append(message.get("body", b""))
            await send(message)

        attach = otel_context.attach(parent)
        try:
            with tracer.start_as_current_span(
                f"{method} {route}",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": method, "http.route": route},
                links=links,
            ) as span:
                try:
                    await self.app(scope, receive, watched)
                finally:
                    code = status[0] if status else 500
                    span.set_attribute("http.response.status_code", code)
                    if note.operation != ANONYMOUS:
                        span.set_attribute("graphql.operation.name", note.operation)
                        if note.operation_type:
                            span.set_attribute("graphql.operation.type", note.operation_type)
                        if note.document_hash:
                            # The hash itself, not the capped label: a span is no metric.
                            span.set_attribute("graphql.document.hash", note.document_hash)
                        span.update_name(f"{note.operation_type or 'query'} {note.operation}")
                    if code >= 500:
                        span.set_status(Status(StatusCode.ERROR))
        finally:
            otel_context.detach(attach)
            NOTE.reset(token)
            code = status[0] if status else 500
            labels = (route, note.operation, str(code))
            metrics.REQUESTS.labels(*labels).inc()
            metrics.REQUEST_SECONDS.labels(*labels).observe(time.perf_counter() - started)
            if note.refusal_body and not note.errors_counted:
                count_refusals(b"".join(note.refusal_body))


def count_refusals(body: bytes) -> None:
    try:
        errors = orjson.loads(body).get("errors") or ()
    except (orjson.JSONDecodeError, AttributeError):
        return
    for error in errors:
        code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
        metrics.REFUSALS.labels(code_label(code)).inc()


def code_label(code: object) -> str:
    return code if isinstance(code, str) and _CODE.match(code) else "NONE"
