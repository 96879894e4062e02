"""The gateway's own tables of ``medfed.toml``; the other packages' tables are declared beside
their code (``security.audit.settings``, ``connectors.health`` …) and gathered in
:mod:`gateway.config.model`.

To add a setting: add a typed field (with its range) to its table here or in its package, read
it as ``settings.config.<table>.<key>``, and list it in docs/configuration.md. Its environment
override ``MEDFED_<TABLE>__<KEY>`` then exists without more code.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
)

from connectors.fanout import DEFAULT_PEER_SHARE
from schema.limits import OperationLimits
from security.crypto.algorithms import PROFILES
from security.crypto.partners import DEFAULT_FILE as DEFAULT_PARTNERS_FILE
from security.identity.jwks import JwksConfigError, check_url
from security.tables import NonEmpty, Table

DATABASE_URL_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
TRACES = ("off", "console", "otlp")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def database_url(value: str) -> str:
    if not value.startswith(DATABASE_URL_SCHEMES):
        raise ValueError(
            f"'{value}' is not a supported database URL "
            f"(use {' or '.join(DATABASE_URL_SCHEMES)}...)"
        )
    return value


class ServerTable(Table):
    host: NonEmpty = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    dev: bool = False  # GraphiQL, introspection and suggestions
    # Resolved against the configuration file's folder; only `medfed serve` reads the files.
    tls_cert: NonEmpty | None = None
    tls_key: NonEmpty | None = None
    tls_client_ca: NonEmpty | None = None

    def mistake(self) -> tuple[str, str] | None:
        # Half a TLS setting would otherwise serve plain HTTP or fail deep inside uvicorn.
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_cert"
            return missing, "tls_cert and tls_key are set together"
        if self.tls_client_ca is not None and self.tls_cert is None:
            return "tls_client_ca", "mutual TLS needs tls_cert and tls_key"
        return None

    @field_validator("port", mode="before")
    @classmethod
    def _port_range(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 65535:
            raise ValueError(f"{value} is outside 1-65535")
        return value


class DataTable(Table):
    dir: NonEmpty = "./data"  # SQLite sources, keys and the gateway's own database
    # One PostgreSQL database for every source (a schema each) and the gateway.
    database_url: NonEmpty | None = None

    @field_validator("database_url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        return None if value is None else database_url(value)


class GatewayTable(Table):
    deadline_seconds: Annotated[float, Field(gt=0, le=120)] = 5.0
    # Statistics scan whole tables at the sources (one GROUP BY each): a deadline of their own.
    statistics_deadline_seconds: Annotated[float, Field(gt=0, le=600)] = 60.0
    # The part of a request's deadline that peers get, so a stopped peer cannot use it all.
    peer_deadline_share: Annotated[float, Field(gt=0, le=1)] = DEFAULT_PEER_SHARE


class RouterToken(Table):
    issuer: NonEmpty
    sub: NonEmpty


class FederationTable(Table):
    # The (issuer, sub) of each federation router's token: the only callers that read
    # `_service { sdl }` outside dev mode.
    routers: list[RouterToken] = Field(default_factory=list)

    @property
    def router_principals(self) -> frozenset[tuple[str, str]]:
        return frozenset((r.issuer, r.sub) for r in self.routers)


class LimitsTable(OperationLimits):
    """``[limits]``: the query limits (schema.limits) and the HTTP edge's."""

    max_body_bytes: PositiveInt = 100_000
    max_json_depth: Annotated[int, Field(ge=2, le=512)] = 32  # nesting in the body
    rate_limits: bool = True
    principal_rate: PositiveFloat = 20.0  # requests per second, refilled continuously
    principal_burst: PositiveInt = 60
    org_rate: PositiveFloat = 200.0
    org_burst: PositiveInt = 600
    redis_url: NonEmpty | None = None  # shared buckets across workers

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError("is not a redis:// URL")  # the URL may hold a password
        return value

    def operation_limits(self) -> OperationLimits:
        return OperationLimits(**{k: getattr(self, k) for k in OperationLimits.model_fields})


class CorsTable(Table):
    origins: list[NonEmpty] = Field(default_factory=list)

    @field_validator("origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        if "*" in value:
            # Credentials (bearer tokens) are in play: a wildcard would let any site read answers.
            raise ValueError("'*' is not allowed; list the front-end origins")
        return [origin.rstrip("/").lower() for origin in value]


def listen_address(raw: object) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port); ValueError names the mistake."""
    host, sep, port = str(raw).rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"'{raw}' must be HOST:PORT (e.g. 127.0.0.1:9464)")
    return host.strip("[]"), int(port)


def _listen(value: Any) -> Any:
    if isinstance(value, str):
        return listen_address(value)
    return value


def _networks(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        raise ValueError('must be a list of addresses or networks, e.g. ["10.1.0.0/24"]')
    found = []
    for item in value:
        try:
            found.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ValueError(f"'{item}' is not an IP address or network") from None
    return tuple(found)


class TelemetrySettings(Table):
    """``[telemetry]`` (docs/telemetry.md)."""

    # /metrics on its own address ("127.0.0.1:9464"); unset: no metrics server.
    metrics_listen: Annotated[tuple[str, int], BeforeValidator(_listen)] | None = None
    traces: Literal["off", "console", "otlp"] = "off"
    otlp_endpoint: NonEmpty = "http://127.0.0.1:4318/v1/traces"
    service_name: NonEmpty = "medfed"
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0  # of new traces
    # Routers and peer gateways (addresses or networks) whose traceparent is continued.
    trusted_trace_callers: Annotated[tuple[Network, ...], BeforeValidator(_networks)] = ()
    # Also /metrics on the API listener, for a token with the operations role only.
    metrics_token: bool = False

    @field_validator("otlp_endpoint")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' must be an http(s) URL")
        return value


class SupervisionTable(Table):
    """``[supervision]``: the scheduled claims scan, and the files of benefits by rule and of
    the claims rule base (docs/supervision.md)."""

    scan_interval_seconds: Annotated[float, Field(ge=0)] = 86_400.0  # 0: no scheduled scan
    scan_lookback_days: Annotated[int, Field(ge=1, le=3660)] = 7  # each run: the last N days
    # Relative to the configuration file's folder; unset: the shipped files under
    # connectors/domain/. Read (and checked strictly) when the gateway's services are built.
    benefits_file: NonEmpty | None = None
    rules_file: NonEmpty | None = None


class PagesSettings(Table):
    """``[pages]``: the identity provider the pages sign in with (see :mod:`gateway.pages`)."""

    oidc_issuer: NonEmpty | None = None
    client_id: NonEmpty | None = None
    resource: NonEmpty | None = None
    scope: NonEmpty = "openid"

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_url(value, "the issuer")
            except JwksConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    def mistake(self) -> tuple[str, str] | None:
        if self.oidc_issuer is not None and self.client_id is None:
            return "client_id", "is required with oidc_issuer"
        if self.oidc_issuer is None and (self.client_id or self.resource):
            return "oidc_issuer", "is required with client_id and resource"
        return None

    @property
    def issuer_origin(self) -> str | None:
        if not self.oidc_issuer:
            return None
        parts = urlsplit(self.oidc_issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def public(self, dev: bool) -> dict[str, Any]:
        """What the pages' scripts are told (nothing secret: a public client has none)."""
        oidc = None
        if self.oidc_issuer:
            oidc = {
                "issuer": self.oidc_issuer,
                "clientId": self.client_id,
                "resource": self.resource,
                "scope": self.scope,
            }
        return {"oidc": oidc, "demo": dev}


class CryptoTable(Table):
    # The algorithms of keys created from now on ("standard" or "national"); existing keys
    # keep theirs.
    profile: str = "standard"
    # Where the local key provider keeps the KEKs; default <data-dir>/keys/kek.json.
    kek_file: NonEmpty | None = None

    @field_validator("profile")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in PROFILES:
            raise ValueError(f"'{value}' is not a crypto profile (use {' or '.join(PROFILES)})")
        return value


class SealingTable(Table):
    partners_file: NonEmpty = DEFAULT_PARTNERS_FILE  # relative: under the data directory
