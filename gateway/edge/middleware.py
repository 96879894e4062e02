"""``EdgeMiddleware``: the outermost layer. It names every request (``X-Request-Id``: always
our own random id; one the client offers is kept beside it, ``X-Client-Request-Id``), adds
the security headers to every answer, answers CORS for the allow-listed origins, and refuses
before authentication what no GraphQL client legitimately sends to ``/graphql``: bodies over
the size limit, methods other than POST (and the GraphiQL page's bare GET in dev mode),
content types other than JSON (a form post or ``text/plain`` is how cross-site request
forgery reaches an API), bodies that are not UTF-8 JSON objects, and arrays of operations.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.edge import body as json_body
from gateway.edge.logs import CLIENT_REQUEST_ID, REQUEST_ID, access_log
from gateway.edge.responses import refuse
from gateway.edge.settings import EdgeSettings
from gateway.telemetry.routes import route_of

STATE_REQUEST_ID = "request_id"
STATE_CLIENT_REQUEST_ID = "client_request_id"
CLIENT_REQUEST_ID_HEADER = b"x-client-request-id"
STATE_EDGE = "edge"  # a dict shared with inner layers: they note the role and organisation
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
JSON_TYPES = ("application/json", "application/graphql-response+json")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
NO_STORE_PREFIXES = ("/graphql", "/audit")
# Request headers a browser partner may send (the preflight allows exactly these).
ALLOWED_REQUEST_HEADERS = (
    b"Authorization, Content-Type, X-Purpose-Of-Use, X-Request-Id, X-Seal-To, "
    b"X-Break-Glass-Reason, X-Break-Glass-Text"
)
EXPOSED_HEADERS = b"X-Request-Id, X-Client-Request-Id, Retry-After"
log = logging.getLogger("medfed.edge")


def _security_headers(message: Message) -> tuple[tuple[bytes, bytes], ...]:
    # A page sets its own, stricter policy (which forbids framing too); everything else
    # gets the API's.
    if any(k.lower() == b"content-security-policy" for k, _ in message.get("headers", [])):
        return tuple(h for h in SECURITY_HEADERS if h[0] != b"content-security-policy")
    return SECURITY_HEADERS


class InFlight:
    """HTTP requests this process is handling right now (the audit log commits on the
    event loop's thread when there is only one: nothing else could use the wait)."""

    count = 0


IN_FLIGHT = InFlight()


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, settings: EdgeSettings, graphql_path: str = "/graphql"
    ) -> None:
        self.app = app
        self.settings = settings
        self.graphql_path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        # Ours is always new and unguessable, so audit ids are unique and sealing binds to a
        # value no client picked; the client's own id is only kept beside it.
        request_id = new_request_id()
        offered = headers.get("x-request-id", "")
        client_id = offered if _REQUEST_ID_RE.match(offered) else None
        token = REQUEST_ID.set(request_id)
        client_token = CLIENT_REQUEST_ID.set(client_id)
        note: dict[str, Any] = {}
        scope = {
            **scope,
            "state": {
                **scope.get("state", {}),
                STATE_REQUEST_ID: request_id,
                STATE_CLIENT_REQUEST_ID: client_id,
                STATE_EDGE: note,
            },
        }
        origin = headers.get("origin")
        allowed_origin = origin if origin and self._origin_allowed(origin, headers) else None
        status_seen: list[int] = []
        started = time.perf_counter()
        IN_FLIGHT.count += 1

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(message["status"])
                extra = [(b"x-request-id", request_id.encode("ascii")), *_security_headers(message)]
                if client_id is not None:
                    extra.append((CLIENT_REQUEST_ID_HEADER, client_id.encode("ascii")))
                if scope["path"].startswith(NO_STORE_PREFIXES):
                    extra.append((b"cache-control", b"no-store"))
                if allowed_origin is not None:
                    extra += [
                        (b"access-control-allow-origin", allowed_origin.encode("latin-1")),
                        (b"vary", b"Origin"),
                        (b"access-control-expose-headers", EXPOSED_HEADERS),
                    ]
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {name for name, _ in extra}
                ]
                message = {**message, "headers": kept + extra}
            await send(message)

        try:
            replay = await self._screen(
                scope, receive, send_with_headers, headers, origin, allowed_origin
            )
            if replay is not None:
                await self.app(scope, replay, send_with_headers)
        finally:
            access_log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope.get("method"),
                        "path": route_of(scope),
                        "status": status_seen[0] if status_seen else None,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "role": note.get("role"),
                        "org": note.get("org"),
                    }
                },
            )
            CLIENT_REQUEST_ID.reset(client_token)
            REQUEST_ID.reset(token)
            IN_FLIGHT.count -= 1

    def _origin_allowed(self, origin: str, headers: dict[str, str]) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.settings.cors_origins:
            return True
        # The gateway's own pages (GraphiQL in dev mode) post from the same origin.
        host = headers.get("host", "").lower()
        return bool(host) and origin in (f"http://{host}", f"https://{host}")

    async def _screen(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        origin: str | None,
        allowed_origin: str | None,
    ) -> Receive | None:
        """The ``receive`` to run the app with, or None once a refusal has been sent."""
        method = scope.get("method", "GET")
        if origin is not None and allowed_origin is None:
            await refuse(
                send,
                403,
                "ORIGIN_NOT_ALLOWED",
                "requests from this origin are not allowed (CORS allow-list)",
            )
            return None
        if method == "OPTIONS" and allowed_origin is not None:
            await self._preflight(send)
            return None
        if scope["path"] != self.graphql_path:
            return receive
        if method == "GET":
            if scope.get("query_string"):
                # Operations over GET are off: a link or an <img> must never run one.
                await refuse(
                    send,
                    405,
                    "METHOD_NOT_ALLOWED",
                    "send operations with POST; GET requests do not run operations",
                    headers=(("allow", "POST"),),
                )
                return None
            return receive  # the GraphiQL page in dev mode; otherwise a 404
        if method != "POST":
            await refuse(
                send,
                405,
                "METHOD_NOT_ALLOWED",
                "send operations with POST",
                headers=(("allow", "POST"),),
            )
            return None
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in JSON_TYPES:
            await refuse(
                send,
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the operation as JSON (Content-Type: application/json)",
            )
            return None
        declared = headers.get("content-length")
        limit = self.settings.max_body_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await refuse(
                send,
                413,
                "PAYLOAD_TOO_LARGE",
                f"the request body is over {limit} bytes",
                limit=limit,
            )
            return None
        body = await _read_body(receive, limit)
        if body is None:
            await refuse(
                send,
                413,
                "PAYLOAD_TOO_LARGE",
                f"the request body is over {limit} bytes",
                limit=limit,
            )
            return None
        problem = _body_problem(body, self.settings.max_json_depth)
        if problem is not None:
            code, message = problem
            await refuse(send, 400, code, message)
            return None
        if media != "application/json":
            # Strawberry reads JSON only under this name; the body was checked above.
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope["headers"].append((b"content-type", b"application/json"))
        return _replay(body, receive)

    async def _preflight(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-methods", b"POST"),
                    (b"access-control-allow-headers", ALLOWED_REQUEST_HEADERS),
                    (b"access-control-max-age", b"600"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def new_request_id() -> str:
    """128 random bits in hex: unique and unpredictable."""
    return secrets.token_hex(16)


def request_ids(scope: Scope) -> tuple[str, str | None]:
    """(our id, the client's offered id) of a request the edge has named; a fresh id of our
    own where it has not (an app run without the edge)."""
    state = scope.get("state") or {}
    return state.get(STATE_REQUEST_ID) or new_request_id(), state.get(STATE_CLIENT_REQUEST_ID)


def _headers(scope: Scope) -> dict[str, str]:
    # Repeated headers: the last wins, which is what every check below needs.
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _body_problem(body: bytes, max_depth: int) -> tuple[str, str] | None:
    """Why the body is refused, or None; the parse is kept for the GraphQL view."""
    try:
        data = json_body.parse(body, max_depth)
    except json_body.BodyRefused as refused:
        return refused.code, refused.message
    if isinstance(data, list):
        # Batching is off: at most one operation per request.
        return "BATCHING_NOT_SUPPORTED", ("Batching is not enabled: send one operation per request")
    if not isinstance(data, dict):
        return "MALFORMED_REQUEST", "the request body must be a JSON object"
    json_body.remember(body, data)
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
