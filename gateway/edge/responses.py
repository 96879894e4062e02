"""GraphQL-shaped JSON refusals sent straight from ASGI middleware."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Send


def error_body(code: str, message: str, **extensions: Any) -> bytes:
    return json.dumps(
        {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]},
        ensure_ascii=False,
    ).encode("utf-8")


async def refuse(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: tuple[tuple[str, str], ...] = (),
    **extensions: Any,
) -> None:
    body = error_body(code, message, **extensions)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
