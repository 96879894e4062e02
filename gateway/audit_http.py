"""The gateway's side of the audit log: the recorder per process, the event of each GraphQL
request and refused authentication, and the auditors' HTTP endpoints.

``/audit/checkpoint`` (the signed note, text), ``/audit/proof?index=I&size=N`` (JSON) and
``/audit/export?format=jsonl|fhir&after=I`` sit behind the same authentication as
``/graphql`` and answer only the auditor role with purpose AUDIT, each within the auditor's
scope (``[audit_scope]`` of the policy): a proof only of an event in scope, an export of the
events in scope only.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphql import OperationType, parse
from graphql.error import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Scope

from gateway.config import ConfigError, Settings
from gateway.edge.middleware import request_ids
from gateway.edge.responses import refusal
from security.audit import AuditLogError, AuditWriteError
from security.audit.events import (
    Operation,
    audit_endpoint_event,
    authentication_event,
    request_event,
)
from security.audit.export import entry_parts, fhir_audit_event
from security.audit.index import in_scope, scoped_entries
from security.audit.recorder import AuditRecorder
from security.audit.settings import AuditSettings
from security.enforcement import Relation
from security.errors import MedfedError
from security.policy.audit_access import audit_log_refusal
from security.policy.audit_scope import AuditScope, Sight

if TYPE_CHECKING:
    from schema.context import Services

log = logging.getLogger("medfed.audit")
RECORDER = "audit"  # key of the recorder in Services.extras


def audit_settings(settings: Settings) -> AuditSettings:
    return settings.config.audit


def make_recorder(settings: Settings, engine: Any) -> AuditRecorder | None:
    """The process's recorder, or None only when ``[audit] enabled = false``."""
    chosen = audit_settings(settings)
    if not chosen.enabled:
        log.warning("the audit log is OFF ([audit] enabled = false): requests are unaudited")
        return None
    if engine is None:
        raise ConfigError("audit", "auditing needs the gateway database")
    from gateway.edge.middleware import IN_FLIGHT
    from gateway.startup import crypto_profile
    from security.audit.outside import Publisher, parse_witnesses

    directory = Path(chosen.checkpoint_dir)
    if not directory.is_absolute():
        directory = settings.data_dir / directory
    return AuditRecorder(
        engine,
        settings.data_dir / "keys",
        chosen,
        crypto_profile(settings),
        inline_when=lambda: IN_FLIGHT.count <= 1,
        publisher=Publisher(directory, parse_witnesses(chosen.witnesses)),
    )


@functools.lru_cache(maxsize=512)
def _is_mutation(text: str, name: str | None) -> bool:
    try:
        document = parse(text)
    except GraphQLError:
        return False
    for definition in document.definitions:
        operation = getattr(definition, "operation", None)
        if operation is None:
            continue
        if name is None or (definition.name and definition.name.value == name):
            return operation is OperationType.MUTATION
    return False


def client_of(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


class AuditUnavailable(MedfedError):
    """The event could not be logged: the request must not be answered."""


async def audit_request(recorder: AuditRecorder, request: Request, ctx: Any, result: Any) -> None:
    text, name = getattr(ctx, "operation", (None, None))
    operation = Operation.of(text, name, bool(text) and _is_mutation(text, name))
    event = request_event(
        ctx, operation, result.errors, result.data is not None, client_of(request.scope)
    )
    if event is None:
        return
    try:
        await recorder.record(event)
    except AuditWriteError as exc:
        log.error("audit write failed, refusing request %s: %s", ctx.request_id, exc)
        raise AuditUnavailable from exc


async def reconcile_forever(services: Any, recorder: AuditRecorder, chosen: Any) -> None:
    """Settle intents without an outcome at start-up (those of processes that are gone, and
    any older than ``after_seconds``), then every ``every_seconds``."""
    from schema.mutations.reconcile import reconcile

    while True:
        try:
            settled = await reconcile(services, recorder, after_seconds=chosen.after_seconds)
            if settled:
                log.warning("reconciled %d write intents", len(settled))
        except Exception:
            # The log or the gateway database is down: the next round tries again.
            log.exception("reconciling write intents failed")
        await asyncio.sleep(chosen.every_seconds)


def on_auth_denied(recorder: AuditRecorder):
    """The ``AuthMiddleware`` callback: log a refused authentication."""

    async def record(scope: Scope, status: int, code: str, reason: str) -> None:
        # The id the caller gets back in X-Request-Id, so a refusal can be found by it.
        request_id, client_request_id = request_ids(scope)
        event = authentication_event(
            client=client_of(scope),
            path=scope.get("path", ""),
            method=scope.get("method", "WS"),
            status=status,
            code=code,
            reason=reason,
            request_id=request_id,
            client_request_id=client_request_id,
        )
        await recorder.record(event)

    return record


# -- HTTP endpoints for auditors ----------------------------------------------------------------


def _auditor(request: Request, services: Services) -> AuditScope | Response:
    """The calling auditor's scope, or the 403 for anyone the field policy does not let read
    the audit log (security.policy.audit_access)."""
    principal = getattr(request.state, "principal", None)
    purpose = getattr(request.state, "purpose", None)
    refused = (
        "no verified caller"
        if principal is None or purpose is None
        else audit_log_refusal(
            principal, purpose, Relation.NONE, services.catalogue, services.decider
        )
    )
    if refused is not None:
        return refusal(
            403, "FORBIDDEN", f"the policy does not let you read the audit log ({refused})"
        )
    return services.policy.auditor_scope(principal.org)


EXPORT_CHUNK = 1000  # events per /audit/export answer; `next` continues after the last


def audit_routes(recorder: AuditRecorder | None, services: Services):
    from starlette.routing import Route

    async def checkpoint(request: Request) -> Response:
        refused = _auditor(request, services)
        if isinstance(refused, Response):
            return refused
        if recorder is None:
            return PlainTextResponse("audit log disabled", status_code=404)
        signed = await (await recorder.log()).checkpoint()
        return PlainTextResponse(signed.note, media_type="text/plain; charset=utf-8")

    async def proof(request: Request) -> Response:
        scope = _auditor(request, services)
        if isinstance(scope, Response):
            return scope
        if recorder is None:
            return PlainTextResponse("audit log disabled", status_code=404)
        try:
            index = int(request.query_params["index"])
            size = request.query_params.get("size")
            audit_log = await recorder.log()
            found = await audit_log.inclusion_proof(index, int(size) if size is not None else None)
            if scope.sight is not Sight.ALL:
                async with recorder.engine.connect() as conn:
                    if not await in_scope(conn, index, scope):
                        return refusal(403, "FORBIDDEN", f"no event {index} in your scope")
        except (KeyError, ValueError):
            return refusal(400, "BAD_USER_INPUT", "pass ?index=I and optionally &size=N")
        except AuditLogError as exc:
            return refusal(400, "BAD_USER_INPUT", str(exc))
        return JSONResponse(found.to_dict())

    async def export(request: Request) -> Response:
        scope = _auditor(request, services)
        if isinstance(scope, Response):
            return scope
        if recorder is None:
            return PlainTextResponse("audit log disabled", status_code=404)
        form = request.query_params.get("format", "jsonl")
        try:
            after = int(request.query_params.get("after", "-1"))
        except ValueError:
            after = None
        if form not in ("jsonl", "fhir") or after is None:
            return refusal(
                400, "BAD_USER_INPUT", "pass ?format=jsonl or fhir and optionally &after=I"
            )
        await recorder.log()  # opens the log and brings the index up to date with it
        entries = await scoped_entries(recorder.engine, scope, after, EXPORT_CHUNK)
        more = len(entries) == EXPORT_CHUNK
        headers = {"X-Audit-Next": str(entries[-1][0])} if more else {}
        if form == "jsonl":
            body = b"".join(entry + b"\n" for _, entry in entries)
            return Response(body, media_type="application/x-ndjson", headers=headers)
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": f"urn:medfed:audit:medfed-audit-{i}", "resource": resource}
                for i, resource in ((i, fhir_audit_event(*entry_parts(e))) for i, e in entries)
            ],
        }
        return JSONResponse(bundle, headers=headers, media_type="application/fhir+json")

    return [
        Route("/audit/checkpoint", audited(recorder, checkpoint)),
        Route("/audit/proof", audited(recorder, proof)),
        Route("/audit/export", audited(recorder, export)),
    ]


def audited(recorder: AuditRecorder | None, endpoint):
    """Wrap an ``/audit/*`` endpoint so every answer, refusals included, is logged first.

    The event is written after the answer is computed (to know its status) and before it
    is sent; if it cannot be written the caller gets 503, not the answer. Its own append
    is not an ``/audit/*`` request, so logging it cannot recurse.
    """

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        response = await endpoint(request)
        if recorder is None:
            return response
        request_id, client_request_id = request_ids(request.scope)
        event = audit_endpoint_event(
            principal=getattr(request.state, "principal", None),
            purpose=getattr(request.state, "purpose", None),
            client=client_of(request.scope),
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            request_id=request_id,
            client_request_id=client_request_id,
        )
        try:
            await recorder.record(event)
        except AuditWriteError as exc:
            log.error("audit write failed, refusing %s: %s", request.url.path, exc)
            return refusal(
                503, "SERVICE_UNAVAILABLE", "audit log unavailable: the request was not answered"
            )
        return response

    return run
