"""``X-Seal-To: <kid>``: seal the answer's identifying and level-4+ values to a partner's key.

Three steps, all inside the gateway:

* :class:`SealingGate` (ASGI, after authentication, before GraphQL runs) resolves the kid
  against the partner registry and the caller's organisation, and refuses the request before
  anything executes when it cannot: 400 ``SEAL_KEY_UNKNOWN`` (no such key for this
  organisation; another organisation's kid gets the same answer, so kids do not leak) or
  503 ``SEALING_UNAVAILABLE`` (the registry file is broken). Fail closed.
* :func:`seal_result` (called first in ``process_result``) replaces the values in
  ``result.data`` before the response, the audit event or any log is built from it (format 2,
  ``security.crypto.sealed_answer``: one HPKE context per answer, bound to the gateway's own
  request id and the client's offered one), and adds ``extensions.sealing``;
* :func:`sign_response` (once Strawberry has formatted the answer) signs it with the
  gateway's sealing key (``keys/sealing.pub``), so the partner can tell a forged, altered or
  replayed answer from the gateway's.
"""

from __future__ import annotations

import functools
from typing import Any

from graphql import DocumentNode, GraphQLError, parse
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.types.execution import ExecutionResult

from gateway.edge.responses import refuse
from schema.sealing import SealingWalkError, seal_result_data
from security.crypto import sealed_answer
from security.crypto.partners import PartnerKey, PartnerKeyError, PartnerRegistry
from security.crypto.sealed_answer import Sealer
from security.crypto.sealing_key import SealingSigner
from security.errors import MedfedError

SEAL_HEADER = b"x-seal-to"
STATE_SEAL_TO = "medfed_seal_to"
STATE_SIGNING = "medfed_sealing_session"
PARTNERS = "partners"
SEALING_SIGNER = "sealing_signer"


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
    await refuse(send, status, code, message)


def seal_result(request: Any, ctx: Any, schema: Any, result: Any) -> None:
    """Seal ``result`` in place if the request asked for it (format 2: one HPKE context for
    the answer); raise rather than answer in the clear when it cannot be sealed. The answer is
    signed by :func:`sign_response` once Strawberry has formatted it."""
    key: PartnerKey | None = getattr(request.state, STATE_SEAL_TO, None)
    if key is None:
        return
    if not isinstance(result, ExecutionResult):
        raise SealingRefused("incremental delivery cannot be sealed")
    signer: SealingSigner | None = ctx.services.extras.get(SEALING_SIGNER)
    if signer is None:
        raise SealingRefused("no sealing key")
    session = signer.session()
    sealer = Sealer(key.kem, key.public_key, key.kid, ctx.request_id, ctx.client_request_id)
    if result.data is not None:
        query, operation_name = getattr(ctx, "operation", (None, None))
        if not query:
            raise SealingRefused("operation text unavailable")
        try:
            seal_result_data(
                schema._schema,
                _parsed(query),
                operation_name,
                result.data,
                ctx.services.catalogue,
                sealer.seal,
            )
        except (SealingWalkError, GraphQLError) as exc:
            raise SealingRefused(str(exc)) from None
    extension = sealer.extension(session.name)
    if session.delegation is not None:
        extension["delegation"] = session.delegation
    result.extensions = {**(result.extensions or {}), "sealing": extension}
    setattr(request.state, STATE_SIGNING, session)


@functools.lru_cache(maxsize=256)
def _parsed(query: str) -> DocumentNode:
    """The operation's document: a partner sends the same few queries, so parse each once.
    (The walk only reads the AST.)"""
    return parse(query)


def sign_response(request: Any, response: dict[str, Any]) -> None:
    """Sign a sealed answer as it will be sent (data, formatted errors, sealing extension)."""
    session = getattr(request.state, STATE_SIGNING, None)
    if session is None:
        return
    try:
        sealed_answer.sign(response, session.sign)
    except (KeyError, TypeError) as exc:
        raise SealingRefused(f"the sealed answer cannot be signed: {type(exc).__name__}") from None


class SealingRefused(MedfedError, RuntimeError):
    """The answer could not be sealed as asked; it must not be sent."""
