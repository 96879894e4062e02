"""Authentication at the door: a pure ASGI middleware that verifies the bearer token and the
purpose of use of every request before the application sees it.

On success the request's ``scope["state"]`` carries ``principal`` (a
:class:`security.identity.Principal`) and ``purpose`` (a :class:`security.identity.Purpose`),
so Starlette code reads ``request.state.principal`` / ``request.state.purpose``. On failure
the application is never called; the answer is a GraphQL-shaped JSON error:

* 401 ``UNAUTHENTICATED``: no, malformed, forged, expired or untrusted token;
* 403 ``PURPOSE_NOT_ALLOWED``: ``X-Purpose-Of-Use`` names a purpose the token does not allow;
* 400 ``PURPOSE_REQUIRED``: no ``X-Purpose-Of-Use`` and the token allows several purposes;
* 400 ``PURPOSE_UNKNOWN``: ``X-Purpose-Of-Use`` is not a purpose of use at all;
* 400 ``BREAK_GLASS_REASON_REQUIRED`` / ``BREAK_GLASS_REASON_UNKNOWN``: purpose EMERGENCY
  without a reason (``X-Break-Glass-Reason`` and ``X-Break-Glass-Text``), or with a code that
  is not a break-glass reason (``security.policy.break_glass.REASONS``);
* 503 ``IDENTITY_UNAVAILABLE``: the trusted-issuer file cannot be loaded (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.edge.responses import refuse
from gateway.telemetry.routes import route_of
from security.identity import (
    DEMO_ISSUER,
    AuthenticationError,
    DemoIssuerError,
    IssuerRegistry,
    Principal,
    Purpose,
    RegistryFile,
    ensure_demo_issuer,
    load_identity_settings,
    open_demo_issuer,
)
from security.identity.demo_issuer import demo_key_path
from security.identity.jwks import KeysUnavailable
from security.identity.token_cache import VerifiedTokens
from security.identity.verify import (
    DEFAULT_LEEWAY_SECONDS,
    DEFAULT_MAX_LIFETIME_SECONDS,
    unverified_key_id,
)
from security.policy.break_glass import (
    REASON_HEADER,
    TEXT_HEADER,
    Reason,
    ReasonError,
    parse_reason,
)

PURPOSE_HEADER = "x-purpose-of-use"
STATE_PRINCIPAL = "principal"
STATE_PURPOSE = "purpose"
STATE_REASON = "break_glass_reason"
REALM = "medfed"
_WS_POLICY_VIOLATION = 1008
log = logging.getLogger("medfed.auth")


@dataclass(frozen=True, slots=True)
class Denial:
    status: int
    code: str
    message: str
    extensions: dict[str, Any] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()


class AuthMiddleware:
    """Verify ``Authorization: Bearer <token>`` and ``X-Purpose-Of-Use`` on every HTTP and
    WebSocket request except ``exempt_paths``.

    ``registry_factory`` is called per request (e.g. a :class:`RegistryFile`, which re-reads
    the file when it changes). With ``allow_graphiql_page`` (dev mode) a plain browser GET of
    ``graphql_path`` asking for HTML, with no query string and no credentials, reaches the app
    unauthenticated (``principal`` and ``purpose`` are ``None``) so GraphiQL can load;
    anything that could execute an operation still needs a token.
    """

    def __init__(
        self,
        app: ASGIApp,
        registry_factory: Callable[[], IssuerRegistry],
        audience: str = "medfed",
        *,
        leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
        max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
        exempt_paths: Iterable[str] = ("/healthz", "/readyz"),
        exempt_prefixes: Iterable[str] = (),
        allow_graphiql_page: bool = False,
        graphql_path: str = "/graphql",
        on_denied: Callable[[Scope, int, str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        self.registry_factory = registry_factory
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self.max_lifetime_seconds = max_lifetime_seconds
        self.exempt_paths = frozenset(exempt_paths)
        # Static files (the pages and their scripts): they hold no data and must load
        # before anyone has signed in.
        self.exempt_prefixes = tuple(exempt_prefixes)
        self.allow_graphiql_page = allow_graphiql_page
        self.graphql_path = graphql_path
        # Called with (scope, status, code, reason) for every refusal: the audit log.
        self.on_denied = on_denied
        # A client sends the same token on every request: its signature is checked once.
        self.tokens = VerifiedTokens(
            audience=audience,
            leeway_seconds=leeway_seconds,
            max_lifetime_seconds=max_lifetime_seconds,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        if scope["type"] == "http" and (
            scope["path"] in self.exempt_paths or scope["path"].startswith(self.exempt_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if self._is_graphiql_page(scope, headers):
            await self.app(_with_state(scope, None, None), receive, send)
            return
        await self._fetch_provider_keys(headers)
        outcome = self.authenticate(headers)
        if isinstance(outcome, Denial):
            # The route template, not the raw path: the path is the client's text.
            route = route_of(scope)
            log.info("refused %s %s: %s", scope.get("method", "WS"), route, outcome.message)
            if self.on_denied is not None:
                try:
                    await self.on_denied(scope, outcome.status, outcome.code, outcome.message)
                except Exception:
                    # The refusal stands either way; it discloses nothing to the caller.
                    log.exception("could not audit a refused authentication")
            await _deny(scope, send, outcome)
            return
        principal, purpose = outcome
        reason = _reason(headers) if purpose is Purpose.EMERGENCY else None
        await self.app(_with_state(scope, principal, purpose, reason), receive, send)

    async def _fetch_provider_keys(self, headers: dict[str, list[str]]) -> None:
        """An OpenID Connect provider's key set is fetched in a thread when the token needs
        it, so a slow provider never stalls the event loop; verification then finds it
        cached (or fetches, and fails, the same way)."""
        token = _bearer_token(headers.get("authorization", []))
        named = None if isinstance(token, Denial) else unverified_key_id(token)
        if named is None:
            return
        try:
            issuer = self.registry_factory().issuer(named[0])
        except Exception:
            return  # authenticate() answers 503 for a broken issuers file
        if issuer is not None and issuer.jwks is not None and issuer.jwks.needs_fetch(named[1]):
            with contextlib.suppress(KeysUnavailable):
                await asyncio.to_thread(issuer.jwks.key, named[1])

    def authenticate(self, headers: dict[str, list[str]]) -> tuple[Principal, Purpose] | Denial:
        """The caller and purpose of a request with these headers, or why it is refused."""
        token = _bearer_token(headers.get("authorization", []))
        if isinstance(token, Denial):
            return token
        try:
            registry = self.registry_factory()
        except Exception as exc:
            # A broken trust configuration must refuse everyone, never admit anyone.
            log.error("trusted issuers unavailable: %s", exc)
            return Denial(
                503,
                "IDENTITY_UNAVAILABLE",
                "the gateway cannot verify tokens right now (trusted issuers unavailable)",
            )
        try:
            principal = self.tokens.verify(token, registry)
        except AuthenticationError as exc:
            return _unauthenticated(exc.reason)
        except KeysUnavailable as exc:
            # The provider is down or answers nonsense: nobody it vouches for gets in.
            log.error("identity provider keys unavailable: %s", exc)
            return Denial(503, "IDENTITY_UNAVAILABLE", str(exc))
        except Exception:
            # A bug in verification must refuse, not crash into a 500 or admit.
            log.exception("token verification failed unexpectedly")
            return _unauthenticated("token could not be verified")
        purpose = _purpose(headers.get(PURPOSE_HEADER, []), principal)
        if isinstance(purpose, Denial):
            return purpose
        if purpose is Purpose.EMERGENCY:
            try:
                _reason(headers)
            except ReasonError as exc:
                return Denial(400, exc.code, str(exc))
        return principal, purpose

    def _is_graphiql_page(self, scope: Scope, headers: dict[str, list[str]]) -> bool:
        # Strawberry renders GraphiQL for a GET without a `query` parameter that accepts
        # HTML. Requiring an empty query string and no credentials means this path can only
        # ever serve that page: any operation (GET ?query=...) goes through authentication.
        return (
            self.allow_graphiql_page
            and scope["type"] == "http"
            and scope.get("method") == "GET"
            and scope["path"] == self.graphql_path
            and not scope.get("query_string")
            and "authorization" not in headers
            and any("text/html" in accept for accept in headers.get("accept", []))
        )


def auth_options(settings: Any) -> dict[str, Any]:
    """Keyword arguments for ``Middleware(AuthMiddleware, **auth_options(settings))`` from
    the gateway settings (``[identity]`` table, data directory, dev mode).

    In dev mode with the default issuers file, the demo issuer is set up first so ``make
    serve`` works on a fresh machine. The registry is loaded once here so a bad issuers file
    stops start-up with its one-line error instead of failing every request.
    Raises ``IssuerConfigError`` or ``DemoIssuerError``.
    """
    identity = load_identity_settings(settings.config.identity, settings.data_dir)
    if settings.dev and identity.uses_default_issuers_file:
        ensure_demo_issuer(settings.data_dir, audience=identity.audience)
    registry = RegistryFile(identity.issuers_file)
    trusted = registry()
    if not settings.dev:
        refuse_demo_issuer(trusted, settings.data_dir, identity.issuers_file)
    return {
        "registry_factory": registry,
        "audience": identity.audience,
        "leeway_seconds": identity.leeway_seconds,
        "max_lifetime_seconds": identity.max_lifetime_seconds,
        "allow_graphiql_page": settings.dev,
    }


def refuse_demo_issuer(registry: IssuerRegistry, data_dir: Path, issuers_file: Path) -> None:
    """Outside dev mode the demo issuer must not be trusted: its key lies in the data
    directory and ``medfed token`` mints any role with it. Trusted by its name, or by its key
    under another name, it stops start-up with a one-line ``DemoIssuerError``."""
    demo_key = demo_key_path(data_dir)
    demo_public = None
    if demo_key.exists():
        try:
            demo_public = open_demo_issuer(data_dir, create=False).private_key.public_key()
        except DemoIssuerError:
            demo_public = None  # unreadable: its name is still checked below
    raw = demo_public.public_bytes_raw() if demo_public is not None else None
    trusts_key = raw is not None and any(
        isinstance(key.public_key, Ed25519PublicKey) and key.public_key.public_bytes_raw() == raw
        for issuer in registry.issuers.values()
        for key in issuer.keys.values()
    )
    if registry.issuer(DEMO_ISSUER) is not None or trusts_key:
        raise DemoIssuerError(
            f"{issuers_file} trusts the demo token issuer while dev mode is off: remove it "
            f"from that file (or turn dev mode on: [server] dev = true, MEDFED_DEV=1)"
        )


# -- request parsing ------------------------------------------------------------------------


def _headers(scope: Scope) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return headers


def _unauthenticated(reason: str, *, with_error: bool = True) -> Denial:
    # RFC 6750 §3.1: a request with no credentials at all gets the challenge without an
    # error code; one with a bad token gets error="invalid_token".
    challenge = f'Bearer realm="{REALM}"'
    if with_error:
        challenge += f', error="invalid_token", error_description="{_quotable(reason)}"'
    return Denial(401, "UNAUTHENTICATED", reason, headers=(("www-authenticate", challenge),))


def _bearer_token(values: list[str]) -> str | Denial:
    if not values:
        return _unauthenticated(
            "no Authorization header (send Authorization: Bearer <token>)", with_error=False
        )
    if len(values) > 1:
        return _unauthenticated("more than one Authorization header")
    # Never echo the header: whatever its scheme, it may hold a credential.
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        return _unauthenticated("the Authorization header must use the Bearer scheme")
    token = token.strip()
    if not token:
        return _unauthenticated("the Authorization header carries no token")
    return token


def _purpose(values: list[str], principal: Principal) -> Purpose | Denial:
    allowed = [p.value for p in Purpose if p in principal.purposes]
    if not values:
        if len(principal.purposes) == 1:
            return next(iter(principal.purposes))
        return Denial(
            400,
            "PURPOSE_REQUIRED",
            f"name the purpose of use in X-Purpose-Of-Use (this token allows {', '.join(allowed)})",
            {"allowedPurposes": allowed},
        )
    if len(values) > 1:
        return Denial(
            400,
            "PURPOSE_UNKNOWN",
            "send exactly one X-Purpose-Of-Use header",
            {"allowedPurposes": allowed},
        )
    raw = values[0].strip()
    try:
        purpose = Purpose(raw.upper())
    except ValueError:
        return Denial(
            400,
            "PURPOSE_UNKNOWN",
            # Never the submitted value: this message is logged and audited.
            "X-Purpose-Of-Use is not a purpose of use "
            f"(one of {', '.join(p.value for p in Purpose)})",
            {"allowedPurposes": allowed},
        )
    if not principal.allows(purpose):
        return Denial(
            403,
            "PURPOSE_NOT_ALLOWED",
            f"this token does not allow purpose {purpose.value} (it allows {', '.join(allowed)})",
            {"allowedPurposes": allowed},
        )
    return purpose


def _quotable(text: str) -> str:
    """Safe inside an HTTP quoted-string: printable ASCII without quote or backslash."""
    return "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "?" for ch in text)


# -- answers ---------------------------------------------------------------------------------


def _reason(headers: dict[str, list[str]]) -> Reason:
    return parse_reason(headers.get(REASON_HEADER, []), headers.get(TEXT_HEADER, []))


def _with_state(
    scope: Scope,
    principal: Principal | None,
    purpose: Purpose | None,
    reason: Reason | None = None,
) -> Scope:
    # A fresh dict: servers may share one lifespan state mapping between requests.
    state = {
        **scope.get("state", {}),
        STATE_PRINCIPAL: principal,
        STATE_PURPOSE: purpose,
        STATE_REASON: reason,
    }
    return {**scope, "state": state}


async def _deny(scope: Scope, send: Send, denial: Denial) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the handshake with 403.
        await send(
            {
                "type": "websocket.close",
                "code": _WS_POLICY_VIOLATION,
                "reason": _quotable(denial.message)[:120],
            }
        )
        return
    await refuse(
        send,
        denial.status,
        denial.code,
        denial.message,
        (("cache-control", "no-store"), *denial.headers),
        **denial.extensions,
    )
