"""Configuration: ``medfed.toml`` plus ``MEDFED_*`` environment overrides.

Every problem is reported as a :class:`ConfigError` naming the key and what is wrong, which
the command line prints as one line (never a traceback).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from connectors.domain import codes
from connectors.graphql_peer.spec import PeerConfigError, PeerSpec, parse_peer
from connectors.sources import SOURCE_KINDS, SourceSpec

DEFAULT_CONFIG = "medfed.toml"
SQLITE_TEMPLATE = "sqlite+aiosqlite:///{data_dir}/sources/{name}.db"
GATEWAY_SQLITE_TEMPLATE = "sqlite+aiosqlite:///{data_dir}/gateway.db"
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_URL_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")


class ConfigError(Exception):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str
    port: int
    dev: bool
    sources: tuple[SourceSpec, ...]
    gateway_url: str
    config_path: Path | None
    extra: dict = field(default_factory=dict, compare=False)
    # Other medfed gateways read over HTTP(S). Kept apart from `sources`, which every SQL
    # code path (migrations, demo, key rotation) walks.
    peers: tuple[PeerSpec, ...] = ()
    # [server] tls_cert / tls_key / tls_client_ca, resolved against the config's folder.
    # Only `medfed serve` reads the files, so other commands do not fail on a missing one.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None

    @property
    def gateway_spec(self) -> SourceSpec:
        """The gateway's own database (audit log, consents, idempotency keys)."""
        schema = None if self.gateway_url.startswith("sqlite") else "medfed_gateway"
        return SourceSpec(name="gateway", kind="gateway", url=self.gateway_url, schema=schema)

    def source(self, name: str) -> SourceSpec:
        for spec in self.sources:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def sources_of(self, kind: str) -> list[SourceSpec]:
        return [s for s in self.sources if s.kind == kind]


def _env_bool(key: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(key, f"'{raw}' is not a boolean (use true or false)")


def _port(key: str, raw: object) -> int:
    try:
        port = int(str(raw))
    except ValueError:
        raise ConfigError(key, f"'{raw}' is not a port number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(key, f"{port} is outside 1-65535")
    return port


def _url(key: str, raw: object, data_dir: Path, name: str) -> str:
    if not isinstance(raw, str) or not raw.startswith(_URL_SCHEMES):
        raise ConfigError(
            key, f"'{raw}' is not a supported database URL (use {' or '.join(_URL_SCHEMES)}...)"
        )
    return raw.format(data_dir=data_dir.as_posix(), name=name)


def _server_file(key: str, raw: object, base: Path) -> Path | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"server.{key}", f"'{raw}' must be a file path")
    return Path(raw) if Path(raw).is_absolute() else base / raw


def _peer(index: int, raw: dict, base: Path) -> PeerSpec:
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"sources[{index}].name", f"'{name}' must be lowercase letters, digits and -"
        )
    try:
        return parse_peer(f"sources[{index}]", raw, name, base)
    except PeerConfigError as exc:
        raise ConfigError(exc.key, exc.problem) from None


def _source(index: int, raw: object, data_dir: Path, shared_pg: str | None) -> SourceSpec:
    key = f"sources[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(key, "must be a table with name and kind")
    unknown = set(raw) - {"name", "kind", "region", "institution", "url", "schema"}
    if unknown:
        raise ConfigError(f"{key}.{sorted(unknown)[0]}", "is not a source setting")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{key}.name", f"'{name}' must be lowercase letters, digits and -")
    kind = raw.get("kind")
    if kind not in (*SOURCE_KINDS, "peer"):
        raise ConfigError(
            f"{key}.kind", f"'{kind}' is not one of {', '.join((*SOURCE_KINDS, 'peer'))}"
        )
    region, institution = raw.get("region"), raw.get("institution")
    if kind == "bureau":
        if region is None:
            raise ConfigError(f"{key}.region", "a bureau needs its province code, e.g. 330000")
        if problem := codes.validate_province(str(region)):
            raise ConfigError(f"{key}.region", problem)
    if kind in ("hospital", "pharmacy"):
        if institution is None:
            raise ConfigError(f"{key}.institution", f"a {kind} needs its institution code")
        check = codes.validate_institution if kind == "hospital" else codes.validate_pharmacy
        if problem := check(str(institution)):
            raise ConfigError(f"{key}.institution", problem)
        region = codes.region_of_institution(institution)
    schema = raw.get("schema")
    if "url" in raw:
        url = _url(f"{key}.url", raw["url"], data_dir, name)
    elif shared_pg:
        url, schema = shared_pg, schema or name.replace("-", "_")
    else:
        url = SQLITE_TEMPLATE.format(data_dir=data_dir.as_posix(), name=name)
    return SourceSpec(
        name=name, kind=kind, url=url, region=region, institution=institution, schema=schema
    )


def load_settings(
    config_path: Path | str | None = None,
    *,
    data_dir: Path | str | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Read the configuration file, then apply environment overrides, then explicit args."""
    env = dict(os.environ if env is None else env)
    path = Path(config_path or env.get("MEDFED_CONFIG") or DEFAULT_CONFIG)
    raw: dict = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"is not valid TOML ({exc})") from None
    elif config_path or env.get("MEDFED_CONFIG"):
        raise ConfigError(str(path), "configuration file not found")
    else:
        path = None

    server = raw.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError("server", "must be a table")
    chosen_dir = data_dir or env.get("MEDFED_DATA_DIR") or raw.get("data", {}).get("dir")
    resolved_dir = Path(chosen_dir or "./data")
    host = env.get("MEDFED_HOST") or server.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise ConfigError("server.host", f"'{host}' is not a host name or address")
    port = _port(
        "MEDFED_PORT" if "MEDFED_PORT" in env else "server.port",
        env.get("MEDFED_PORT", server.get("port", 8000)),
    )
    dev = (
        _env_bool("MEDFED_DEV", env["MEDFED_DEV"])
        if "MEDFED_DEV" in env
        else bool(server.get("dev", False))
    )

    shared_pg = env.get("MEDFED_DATABASE_URL")
    if shared_pg:
        shared_pg = _url("MEDFED_DATABASE_URL", shared_pg, resolved_dir, "gateway")
    raw_sources = raw.get("sources", [])
    if not isinstance(raw_sources, list):
        raise ConfigError("sources", "must be an array of tables ([[sources]])")
    base = path.parent if path is not None else Path.cwd()
    peers = tuple(
        _peer(i, s, base)
        for i, s in enumerate(raw_sources)
        if isinstance(s, dict) and s.get("kind") == "peer"
    )
    sources = tuple(
        _source(i, s, resolved_dir, shared_pg)
        for i, s in enumerate(raw_sources)
        if not (isinstance(s, dict) and s.get("kind") == "peer")
    )
    seen: set[str] = set()
    for i, spec in enumerate([*sources, *peers]):
        if spec.name in seen:
            raise ConfigError(f"sources[{i}].name", f"'{spec.name}' is configured twice")
        seen.add(spec.name)
    if len([s for s in sources if s.kind == "directory"]) > 1:
        raise ConfigError("sources", "only one institution directory may be configured")
    tls = {
        key: _server_file(key, server.get(key), base)
        for key in ("tls_cert", "tls_key", "tls_client_ca")
    }
    # Half a TLS setting would otherwise serve plain HTTP or fail deep inside uvicorn.
    if (tls["tls_cert"] is None) != (tls["tls_key"] is None):
        missing = "tls_key" if tls["tls_key"] is None else "tls_cert"
        raise ConfigError(f"server.{missing}", "tls_cert and tls_key are set together")
    if tls["tls_client_ca"] is not None and tls["tls_cert"] is None:
        raise ConfigError("server.tls_client_ca", "mutual TLS needs tls_cert and tls_key")
    gateway_url = shared_pg or GATEWAY_SQLITE_TEMPLATE.format(data_dir=resolved_dir.as_posix())
    extra = {k: v for k, v in raw.items() if k not in ("server", "data", "sources")}
    if "MEDFED_AUDIT_ENABLED" in env:  # the benchmark's "audit off" run, nothing else
        audit = dict(extra.get("audit") or {})
        audit["enabled"] = _env_bool("MEDFED_AUDIT_ENABLED", env["MEDFED_AUDIT_ENABLED"])
        extra["audit"] = audit
    return Settings(
        data_dir=resolved_dir,
        host=host,
        port=port,
        dev=dev,
        sources=sources,
        gateway_url=gateway_url,
        config_path=path,
        extra=extra,
        peers=peers,
        **tls,
    )
