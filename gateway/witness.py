"""This gateway as a witness of other gateways' audit logs (``[witness]``).

``POST /witness/add-checkpoint`` is C2SP tlog-witness's submission endpoint (the submission
prefix is ``<gateway>/witness``); ``GET /witness/checkpoint?origin=<origin>`` answers the
checkpoint last cosigned for that log, with the cosignature, for ``medfed audit verify`` on
the log's side (the spec leaves retrieval open). Both are outside bearer authentication:
the log's signature authenticates a submission, and checkpoints carry only hashes.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.config import Settings
from security.audit import witness
from security.audit.cosign import load_or_create_witness

PATHS = ("/witness/add-checkpoint", "/witness/checkpoint")


def witness_settings(settings: Settings) -> witness.WitnessSettings:
    return witness.WitnessSettings.from_table(settings.config.witness)


def _answer(found: witness.Answer) -> Response:
    return Response(found.body, status_code=found.status, media_type=found.content_type)


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > witness.MAX_BODY:
            break
        chunks.append(chunk)
    return b"".join(chunks) if size <= witness.MAX_BODY else b"\0" * (witness.MAX_BODY + 1)


def witness_routes(settings: Settings, engine: Any) -> list[Route]:
    chosen = witness_settings(settings)
    if not chosen.enabled or engine is None:
        return []
    assert chosen.name is not None
    signer = load_or_create_witness(settings.data_dir / "keys", chosen.name)

    async def add_checkpoint(request: Request) -> Response:
        return _answer(await witness.add_checkpoint(engine, chosen, signer, await _body(request)))

    async def checkpoint(request: Request) -> Response:
        origin = request.query_params.get("origin", "")
        return _answer(await witness.latest(engine, origin))

    return [
        Route(PATHS[0], add_checkpoint, methods=["POST"]),
        Route(PATHS[1], checkpoint, methods=["GET"]),
    ]
