"""Configuration: ``medfed.toml`` plus ``MEDFED_*`` environment overrides, as one typed model.

:func:`load_settings` reads the file once, lays the environment over it and checks every table
(:mod:`gateway.config.model`); the first mistake is a :class:`ConfigError` naming the key, which
the command line prints as one line (never a traceback). A component reads its typed table as
``settings.config.<table>`` (``settings.config.audit.max_batch``); :class:`Settings` adds what
is resolved from several tables (the data directory, the sources' database URLs, TLS files).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.graphql_peer.spec import PeerSpec
from connectors.sources import SourceSpec
from gateway.config.model import ConfigError, MedfedConfig, merge, read_config, validate
from gateway.config.sources import SQLITE_TEMPLATE, SourceProblem, resolve_sources

__all__ = [
    "DEFAULT_CONFIG",
    "GATEWAY_SQLITE_TEMPLATE",
    "SQLITE_TEMPLATE",
    "ConfigError",
    "MedfedConfig",
    "Settings",
    "default_config",
    "load_settings",
]

DEFAULT_CONFIG = "medfed.toml"
GATEWAY_SQLITE_TEMPLATE = "sqlite+aiosqlite:///{data_dir}/gateway.db"
# Tables whose values are resolved into Settings' own fields at load time.
_RESOLVED = ("server", "data", "sources")


def default_config() -> MedfedConfig:
    """Every table at its defaults (no file, no environment)."""
    return validate({})


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str
    port: int
    dev: bool
    sources: tuple[SourceSpec, ...]
    gateway_url: str
    config_path: Path | None
    # Every table, typed: settings.config.telemetry.sample_ratio.
    config: MedfedConfig = field(default_factory=default_config, compare=False)
    # Other medfed gateways read over HTTP(S). Kept apart from `sources`, which every SQL
    # code path (migrations, demo, key rotation) walks.
    peers: tuple[PeerSpec, ...] = ()
    # [server] tls_cert / tls_key / tls_client_ca, resolved against the config's folder.
    # Only `medfed serve` reads the files, so other commands do not fail on a missing one.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    # The file's tables with the environment over them, before checking (for with_tables).
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

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

    def with_tables(self, **tables: Mapping[str, Any]) -> Settings:
        """These settings with some tables changed (deep-merged, checked like the file's):
        ``settings.with_tables(audit={"alerts": {"probing_denials": 3}})``."""
        resolved = sorted(set(tables) & set(_RESOLVED))
        if resolved:
            raise ValueError(f"[{resolved[0]}] is resolved at load time; use dataclasses.replace")
        raw = merge(self.raw, tables)
        return dataclasses.replace(self, config=validate(raw), raw=raw)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"is not valid TOML ({exc})") from None


def _file(base: Path, raw: str | None) -> Path | None:
    if raw is None:
        return None
    return Path(raw) if Path(raw).is_absolute() else base / raw


def load_settings(
    config_path: Path | str | None = None,
    *,
    data_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read the configuration file, then apply environment overrides, then explicit args.

    ``env`` stands for ``os.environ`` (tests pass their own); nothing else reads either."""
    import os

    environ = dict(os.environ if env is None else env)
    named = config_path or environ.get("MEDFED_CONFIG")
    path: Path | None = Path(named or DEFAULT_CONFIG)
    file_values: dict[str, Any] = {}
    if path is not None and path.exists():
        file_values = _read_file(path)
    elif named:
        raise ConfigError(str(path), "configuration file not found")
    else:
        path = None
    config, raw = read_config(file_values, environ)
    resolved_dir = Path(data_dir or config.data.dir)
    shared_pg = config.data.database_url
    if shared_pg:
        shared_pg = shared_pg.format(data_dir=resolved_dir.as_posix(), name="gateway")
    base = path.parent if path is not None else Path.cwd()
    try:
        sources, peers = resolve_sources(config.sources, resolved_dir, shared_pg, base)
    except SourceProblem as exc:
        raise ConfigError(exc.key or "sources", exc.problem) from None
    server = config.server
    return Settings(
        data_dir=resolved_dir,
        host=server.host,
        port=server.port,
        dev=server.dev,
        sources=sources,
        gateway_url=shared_pg or GATEWAY_SQLITE_TEMPLATE.format(data_dir=resolved_dir.as_posix()),
        config_path=path,
        config=config,
        peers=peers,
        tls_cert=_file(base, server.tls_cert),
        tls_key=_file(base, server.tls_key),
        tls_client_ca=_file(base, server.tls_client_ca),
        raw=raw,
    )
