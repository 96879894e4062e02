"""``X-Seal-To: <kid>``: seal every level-4+ value of the answer to a partner's public key.

Two steps, both inside the gateway:

* :class:`SealingGate` (ASGI, after authentication, before GraphQL runs) resolves the kid
  against the partner registry and the caller's organisation, and refuses the request before
  anything executes when it cannot: 400 ``SEAL_KEY_UNKNOWN`` (no such key for this
  organisation; another organisation's kid gets the same answer, so kids do not leak) or
  503 ``SEALING_UNAVAILABLE`` (the registry file is broken). Fail closed.
* :func:`seal_result` (called first in ``process_result``) replaces the values in
  ``result.data`` before the response, the audit event or any log is built from it, and adds
  ``extensions.sealing {requestId, kid, suite, sealed}``.
"""

from __future__ import annotations

import json
from typing import Any

from graphql import GraphQLError, parse
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.types.execution import ExecutionResult

from schema.sealing import SealingWalkError, seal_result_data
from security.crypto import hpke_seal
from security.crypto.partners import PartnerKey, PartnerKeyError, PartnerRegistry

SEAL_HEADER = b"x-seal-to"
STATE_SEAL_TO = "medfed_seal_to"
PARTNERS = "partners"


class SealingGate:
    def __init__(self, app: ASGIApp, registry: PartnerRegistry | None) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            kids = [v for k, v in scope.get("headers", ()) if k.lower() == SEAL_HEADER]
            if kids:
                key, denial = self._resolve(scope, kids)
                if denial is not None:
                    await _refuse(scope, receive, send, *denial)
                    return
                scope.setdefault("state", {})[STATE_SEAL_TO] = key
        await self.app(scope, receive, send)

    def _resolve(
        self, scope: Scope, kids: list[bytes]
    ) -> tuple[PartnerKey | None, tuple[int, str, str] | None]:
        kid = kids[0].decode("latin-1").strip()
        principal = scope.get("state", {}).get("principal")
        if scope["type"] != "http":
            # Subscriptions do not pass through process_result; nothing could be sealed.
            return None, (400, "SEALING_NOT_SUPPORTED", "sealing is not available here")
        if self.registry is None:
            return None, (503, "SEALING_UNAVAILABLE", "partner key registry not configured")
        try:
            key = self.registry.get(kid)
        except PartnerKeyError:
            return None, (
                503,
                "SEALING_UNAVAILABLE",
                "partner key registry cannot be read; sealing refused",
            )
        if (
            len(kids) != 1
            or principal is None
            or key is None
            or key.org != getattr(principal, "org", None)
        ):
            return None, (
                400,
                "SEAL_KEY_UNKNOWN",
                "X-Seal-To: no key with this id is registered for your organisation",
            )
        return key, None


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def seal_result(request: Any, ctx: Any, schema: Any, result: Any) -> None:
    """Seal ``result`` in place if the request asked for it; raise rather than answer in the
    clear when it cannot be sealed."""
    key: PartnerKey | None = getattr(request.state, STATE_SEAL_TO, None)
    if key is None:
        return
    if not isinstance(result, ExecutionResult):
        raise SealingRefused("incremental delivery cannot be sealed")
    if result.data is not None:
        query, operation_name = getattr(ctx, "operation", (None, None))
        if not query:
            raise SealingRefused("operation text unavailable")
        request_id = ctx.request_id

        def seal(path: list[str | int], value: Any) -> str:
            return hpke_seal.seal(key.kem, key.public_key, key.kid, request_id, path, value)

        try:
            sealed = seal_result_data(
                schema._schema,
                parse(query),
                operation_name,
                result.data,
                ctx.services.catalogue,
                seal,
            )
        except (SealingWalkError, GraphQLError) as exc:
            raise SealingRefused(str(exc)) from None
    else:
        sealed = 0
    result.extensions = {
        **(result.extensions or {}),
        "sealing": {
            "requestId": ctx.request_id,
            "kid": key.kid,
            "suite": key.suite,
            "sealed": sealed,
        },
    }


class SealingRefused(RuntimeError):
    """The answer could not be sealed as asked; it must not be sent."""
