"""The one writer of JSON refusals, in the GraphQL-over-HTTP shape.

Every answer the gateway refuses before (or instead of) executing an operation, from ASGI
middleware (the edge, authentication, sealing, rate limits) or from an endpoint (the GraphQL
view, the auditors' HTTP routes), is ``{"errors": [{"message": …, "extensions": {"code": …}}]}``
with the status the refusal carries, so that a client reads one shape and acts on the code.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.types import Send

from security.errors import MedfedError

JSON = "application/json"


def error_body(code: str, message: str, **extensions: Any) -> bytes:
    return json.dumps(
        {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]},
        ensure_ascii=False,
    ).encode("utf-8")


def _raw_headers(body: bytes, headers: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", JSON.encode("ascii")),
        (b"content-length", str(len(body)).encode("ascii")),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers),
    ]


async def refuse(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: tuple[tuple[str, str], ...] = (),
    **extensions: Any,
) -> None:
    """Answer a refusal straight from ASGI middleware."""
    body = error_body(code, message, **extensions)
    await send(
        {"type": "http.response.start", "status": status, "headers": _raw_headers(body, headers)}
    )
    await send({"type": "http.response.body", "body": body})


def refusal(
    status: int,
    code: str,
    message: str,
    headers: tuple[tuple[str, str], ...] = (),
    **extensions: Any,
) -> Response:
    """The same refusal as a Starlette response, for endpoints."""
    return Response(
        error_body(code, message, **extensions),
        status_code=status,
        headers=dict(headers),
        media_type=JSON,
    )


def refusal_of(error: MedfedError) -> Response:
    """A medfed error as its refusal: its status, its code, its message."""
    return refusal(error.status, error.code, str(error))
