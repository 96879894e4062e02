"""``/metrics`` on the API listener, for a bearer token with the operations role only
(``[telemetry] metrics_token = true``): the alternative to a listen address of its own.

The route is exempt from the data routes' authentication (an operations token has no
purpose of use, which those require) and checks the token itself: verified against the
same trusted issuers, audience, leeway and lifetime as every request, then its role. Fails
closed: no token, a bad one, another role, or trusted issuers that cannot be read are all
refused, and nothing of the metrics is sent.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.edge.responses import error_body
from gateway.telemetry.metrics import exposition
from security.identity import AuthenticationError, Role, verify_token

PATH = "/metrics"
log = logging.getLogger("medfed.telemetry")
_CHALLENGE = 'Bearer realm="medfed"'


def _refused(status: int, code: str, message: str) -> Response:
    headers = {"www-authenticate": _CHALLENGE} if status == 401 else {}
    return Response(
        error_body(code, message),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def metrics_route(options: dict[str, Any]) -> Route:
    """``options``: :func:`gateway.auth.auth_options` (issuers, audience, leeway, lifetime)."""

    async def metrics(request: Request) -> Response:
        values = request.headers.getlist("authorization")
        scheme, _, token = (values[0] if len(values) == 1 else "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _refused(401, "UNAUTHENTICATED", "send Authorization: Bearer <operations token>")
        try:
            principal = verify_token(
                token.strip(),
                options["registry_factory"](),
                audience=options["audience"],
                leeway_seconds=options["leeway_seconds"],
                max_lifetime_seconds=options["max_lifetime_seconds"],
            )
        except AuthenticationError as exc:
            return _refused(401, "UNAUTHENTICATED", exc.reason)
        except Exception as exc:  # issuers unreadable, keys unavailable, a bug: refuse
            log.error("metrics token not verified: %s", type(exc).__name__)
            return _refused(503, "IDENTITY_UNAVAILABLE", "the token cannot be verified now")
        if principal.role is not Role.OPERATIONS:
            return _refused(403, "FORBIDDEN", "/metrics is for the operations role only")
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return Route(PATH, metrics, methods=["GET"])
