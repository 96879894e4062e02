"""The ASGI application: /graphql behind authentication, /healthz and /readyz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from cross_web import HTTPException
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.schema.exceptions import CannotGetOperationTypeError

from connectors.domain.recognition import RecognitionCatalogue
from connectors.fanout import Deadline
from connectors.health import reason_of
from connectors.registry import SourceRegistry
from connectors.sql.engine import create_source_engine
from gateway.audit_http import (
    RECORDER,
    AuditUnavailable,
    audit_request,
    audit_routes,
    audit_settings,
    make_recorder,
    on_auth_denied,
    reconcile_forever,
)
from gateway.auth import AuthMiddleware, auth_options
from gateway.config import Settings
from gateway.edge import EdgeMiddleware, RateLimitMiddleware, edge_settings, make_limiter
from gateway.edge import body as json_body
from gateway.edge.middleware import request_ids
from gateway.edge.responses import refusal
from gateway.edge.trusted import Refusal, resolve_trusted
from gateway.pages import PATHS as PAGE_PATHS
from gateway.pages import PREFIXES as PAGE_PREFIXES
from gateway.pages import page_routes
from gateway.professional_keys import PROFESSIONAL_KEYS_PREFIX, professional_key_routes
from gateway.records_log import checkpoint_forever, open_records_log
from gateway.sealing import (
    PARTNERS,
    SEALING_SIGNER,
    SealingGate,
    SealingRefused,
    seal_result,
    sign_response,
)
from gateway.startup import crypto_profile, open_keyring
from gateway.supervision import rule_files, scan_forever
from gateway.telemetry.metrics_http import PATH as METRICS_PATH
from gateway.telemetry.metrics_http import metrics_route
from gateway.telemetry.setup import instrument
from gateway.telemetry.tracing import flush_tracing
from gateway.witness import PATHS as WITNESS_PATHS
from gateway.witness import witness_routes
from schema.anchoring import RECORDS_LOG
from schema.build import build_schema
from schema.context import RequestContext, Services
from schema.extracts.produce import EXTRACTS_DIR, KEYRING
from schema.mutations import Mutation
from schema.signing import PROFESSIONAL_KEYS
from security import failpoints
from security.audit import AuditWriteError
from security.crypto import BlindIndexer, FieldCipher
from security.crypto.partners import PartnerRegistry, partners_file
from security.crypto.professional_keys import ProfessionalKeys
from security.crypto.sealing_key import load_sealing_signer
from security.documents import DocumentPolicy, DocumentStore
from security.enforcement import FieldGuard
from security.policy.break_glass import GATEWAY_KEY_SOURCE
from security.records.settings import DEFAULT_ORIGIN as DEFAULT_RECORDS_ORIGIN

RECORDS_ORIGIN = DEFAULT_RECORDS_ORIGIN  # the default of [records] origin


def build_services(settings: Settings) -> Services:
    keyring = open_keyring(settings, create=False)
    # The gateway's own data key: break-glass reasons and alert notes (security.policy).
    keyring.ensure_source(GATEWAY_KEY_SOURCE)
    for warning in keyring.warnings():  # shared index key, a GCM key near its limit
        logging.getLogger("medfed.keys").warning(warning)
    benefits, claims_rules = rule_files(settings)
    gateway_engine = create_source_engine(settings.gateway_spec)
    config = settings.config
    return Services(
        registry=SourceRegistry(settings.sources, settings.peers, config.health),
        cipher=FieldCipher(keyring),
        indexer=BlindIndexer(keyring),
        recognition=RecognitionCatalogue.from_settings(config.recognition),
        deadline_seconds=config.gateway.deadline_seconds,
        statistics_deadline_seconds=config.gateway.statistics_deadline_seconds,
        peer_deadline_share=config.gateway.peer_deadline_share,
        gateway_engine=gateway_engine,
        router_principals=config.federation.router_principals,
        benefits=benefits,
        claims_rules=claims_rules,
        extras={
            RECORDER: make_recorder(settings, gateway_engine),
            KEYRING: keyring,
            EXTRACTS_DIR: settings.data_dir / "extracts",
            PROFESSIONAL_KEYS: ProfessionalKeys(
                settings.data_dir / "keys", crypto_profile(settings)
            ),
            RECORDS_LOG: open_records_log(settings, gateway_engine),
        },
    )


async def gateway_readiness(engine: Any, within: float = 2.0) -> dict[str, Any]:
    if engine is None:
        return {"health": "ok"}
    try:
        async with asyncio.timeout(within):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure: not ready, with a stable reason
        return {"health": "unavailable", "reason": reason_of(exc)}
    return {"health": "ok"}


_HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    500: "INTERNAL",
    503: "SERVICE_UNAVAILABLE",
}


class MedfedGraphQL(GraphQL):
    def __init__(
        self,
        schema,
        services: Services,
        *,
        documents: DocumentStore | None = None,
        document_policy: DocumentPolicy | None = None,
        max_json_depth: int = json_body.DEFAULT_MAX_DEPTH,
        **kwargs: Any,
    ) -> None:
        super().__init__(schema, **kwargs)
        self.max_json_depth = max_json_depth
        self.services = services
        self.documents = documents
        self.document_policy = document_policy or DocumentPolicy(frozenset())

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        # Refusals in the same JSON shape as every other error, with a code to act on.
        from strawberry.types.unset import UNSET

        try:
            return await super().run(
                request,
                UNSET if context is None else context,
                UNSET if root_value is None else root_value,
            )
        except (Refusal, json_body.BodyRefused) as refused:
            return refusal(refused.status, refused.code, refused.message)
        except HTTPException as exc:
            reason = exc.reason
            if isinstance(exc.__cause__, CannotGetOperationTypeError):
                # Strawberry quotes the operationName sent; it is the client's text.
                reason = "operationName does not name an operation of the document"
            return refusal(exc.status_code, _HTTP_CODES.get(exc.status_code, "BAD_REQUEST"), reason)

    def decode_json(self, data: str | bytes) -> object:
        # The edge's parse of this body, or the same parser with the same depth limit.
        return json_body.decode(data, self.max_json_depth)

    def encode_json(self, data: object) -> str | bytes:
        # orjson: a quarter of the time of json.dumps on a cloud record. Results hold only
        # JSON values already (scalars serialised themselves); anything else falls back.
        try:
            return orjson.dumps(data)
        except (orjson.JSONEncodeError, TypeError):
            return super().encode_json(data)

    async def get_context(self, request: Request, response: Any) -> RequestContext:
        principal = request.state.principal
        purpose = request.state.purpose
        request_id, client_request_id = request_ids(request.scope)
        request.state.medfed_context = context = RequestContext(
            services=self.services,
            principal=principal,
            purpose=purpose,
            guard=FieldGuard(principal, purpose, self.services.decider),
            deadline=Deadline(self.services.deadline_seconds, self.services.peer_deadline_share),
            request=request,
            # The edge's id: the same in the X-Request-Id header, the logs and the audit.
            request_id=request_id,
            client_request_id=client_request_id,
            break_glass_reason=getattr(request.state, "break_glass_reason", None),
        )
        return context

    async def execute_operation(
        self, request, request_adapter, request_data, context, root_value, sub_response
    ):
        if not isinstance(request_data, list):
            context.trusted_document = await resolve_trusted(
                request_data, context.principal, self.documents, self.document_policy
            )
        # The audit event names the operation and hashes its text (never its variables).
        context.operation = (
            getattr(request_data, "query", None),
            getattr(request_data, "operation_name", None),
        )
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def process_result(self, request: Request, result: Any) -> Any:
        ctx = getattr(request.state, "medfed_context", None)
        try:
            # First: nothing below (response, audit event, logs) sees a level-4+ plaintext.
            seal_result(request, ctx, self.schema, result)
        except SealingRefused:
            result.data = None
            raise HTTPException(500, "the answer could not be sealed: not sent") from None
        if ctx is not None and getattr(ctx, "audit_unavailable", False):
            # A write's intent or outcome could not be logged: nothing is acknowledged.
            raise HTTPException(503, "audit log unavailable: the request was not answered")
        # Runs before the response is built: the event is durable before anything leaves.
        response = await super().process_result(request, result)
        try:
            sign_response(request, response)
        except SealingRefused:
            raise HTTPException(500, "the answer could not be sealed: not sent") from None
        recorder = self.services.extras.get(RECORDER)
        if recorder is not None and ctx is not None:
            try:
                await audit_request(recorder, request, ctx, result)
            except AuditUnavailable:
                raise HTTPException(
                    503, "audit log unavailable: the request was not answered"
                ) from None
            if getattr(ctx, "write_outcomes", None):
                await failpoints.reach("mutation.after_outcome")  # fault tests only
        return response


def create_app(
    settings: Settings, services: Services | None = None, subgraph: str | None = None
) -> Starlette:
    """The gateway; with ``subgraph`` (records, results, settlement) it serves that
    federation subgraph instead of the merged schema."""
    services = services or build_services(settings)
    edge = edge_settings(settings)
    records_every = settings.config.records.checkpoint_seconds
    limiter = make_limiter(edge)
    documents = (
        DocumentStore(services.gateway_engine) if services.gateway_engine is not None else None
    )
    document_policy = settings.config.documents
    if subgraph is None:
        schema = build_schema(
            dev=settings.dev, mutation=Mutation, limits=settings.config.limits.operation_limits()
        )
    else:
        from schema.federation import build_subgraph

        schema = build_subgraph(
            subgraph, dev=settings.dev, limits=settings.config.limits.operation_limits()
        )
    graphql = MedfedGraphQL(
        schema,
        services,
        graphql_ide="graphiql" if settings.dev else None,
        allow_queries_via_get=False,
        documents=documents,
        document_policy=document_policy,
        max_json_depth=edge.max_json_depth,
    )

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        # Ready while this gateway can serve: its own database (audit log, consents,
        # idempotency keys) answers. A source that is down degrades answers
        # (SOURCE_UNAVAILABLE naming it); it must not take every replica out of the load
        # balancer because one hospital is down. Operators read the per-source detail.
        gateway = await gateway_readiness(services.gateway_engine)
        sources = await services.registry.readiness()
        degraded = sorted(name for name, s in sources.items() if s["health"] != "ok")
        ready = gateway["health"] == "ok"
        return JSONResponse(
            {"ready": ready, "gateway": gateway, "degraded": degraded, "sources": sources},
            status_code=200 if ready else 503,
        )

    recorder = services.extras.get(RECORDER)
    witnessing = witness_routes(settings, services.gateway_engine)
    partners = services.extras.setdefault(
        PARTNERS,
        PartnerRegistry(partners_file(settings.data_dir, settings.config.sealing.partners_file)),
    )
    if SEALING_SIGNER not in services.extras:
        services.extras[SEALING_SIGNER] = load_sealing_signer(
            settings.data_dir / "keys", crypto_profile(settings)
        )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        reconciler = None
        if recorder is not None:
            try:  # start the audit writer now rather than on the first request
                await recorder.start()
            except AuditWriteError:
                # Requests answer 503 until it opens; each one tries again.
                logging.getLogger("medfed.audit").exception("the audit log did not open")
            # Writes a crashed process left without an outcome: settled now, then watched.
            reconciler = asyncio.create_task(
                reconcile_forever(services, recorder, audit_settings(settings).reconcile)
            )
        scanner = asyncio.create_task(scan_forever(services, recorder, settings.config.supervision))
        records = services.extras.get(RECORDS_LOG)
        signing = (
            asyncio.create_task(checkpoint_forever(records, records_every))
            if records is not None
            else None
        )
        yield
        for task in (scanner, signing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if reconciler is not None:
            reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler
        if recorder is not None:
            await recorder.close()
        if limiter is not None:
            await limiter.close()
        await services.registry.dispose()
        if services.gateway_engine is not None:
            await services.gateway_engine.dispose()
        flush_tracing()

    auth = auth_options(settings)
    metrics_by_token = settings.config.telemetry.metrics_token
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", SealingGate(graphql, partners), methods=["GET", "POST"]),
            *audit_routes(recorder, services),
            *professional_key_routes(services.extras[PROFESSIONAL_KEYS]),
            *witnessing,
            *page_routes(settings),
            *([metrics_route(auth)] if metrics_by_token else []),
        ],
        middleware=[
            Middleware(EdgeMiddleware, edge),
            Middleware(
                AuthMiddleware,
                **auth,
                # A witness submission is authenticated by the log's signature, not a token.
                exempt_paths=(
                    "/healthz",
                    "/readyz",
                    *PAGE_PATHS,
                    *(WITNESS_PATHS if witnessing else ()),
                    # Checks its own token: the operations role, which has no purpose.
                    *((METRICS_PATH,) if metrics_by_token else ()),
                ),
                exempt_prefixes=(*PAGE_PREFIXES, PROFESSIONAL_KEYS_PREFIX),
                on_denied=on_auth_denied(recorder) if recorder else None,
            ),
            Middleware(RateLimitMiddleware, limiter, edge),
        ],
        lifespan=lifespan,
    )
    return instrument(app, schema, services, recorder, settings)  # metrics, spans, sources
