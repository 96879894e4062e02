"""The one settings model: every table of ``medfed.toml``, typed, and how a mistake is told.

:class:`MedfedConfig` gathers the tables, each declared beside the code that uses it. It is
the only reader of the file and of the ``MEDFED_*`` environment (:func:`read_config`): the
file's values are checked strictly, an environment value (text) is converted by its field's
type by pydantic-settings and then checked the same way, and the first mistake becomes one
:class:`ConfigError` naming the key (``sources[0].region``) or the variable
(``MEDFED_AUDIT__MAX_BATCH``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from connectors.domain.recognition import RecognitionSettings
from connectors.health import HealthSettings
from gateway.config.sources import KINDS, SourceEntry
from gateway.config.tables import (
    CorsTable,
    CryptoTable,
    DataTable,
    FederationTable,
    GatewayTable,
    LimitsTable,
    PagesSettings,
    SealingTable,
    ServerTable,
    SupervisionTable,
    TelemetrySettings,
)
from security.audit.settings import AuditSettings
from security.audit.witness import WitnessTable
from security.documents import DocumentPolicy
from security.errors import MedfedError
from security.identity.settings import IdentityTable
from security.records.settings import RecordsSettings
from security.tables import Table

ENV_PREFIX = "MEDFED_"
# The short names documented before every key had its MEDFED_<TABLE>__<KEY>; both work.
ENV_ALIASES = {
    "MEDFED_DATA_DIR": ("data", "dir"),
    "MEDFED_DATABASE_URL": ("data", "database_url"),
    "MEDFED_HOST": ("server", "host"),
    "MEDFED_PORT": ("server", "port"),
    "MEDFED_DEV": ("server", "dev"),
    "MEDFED_AUDIT_ENABLED": ("audit", "enabled"),
    "MEDFED_CRYPTO_PROFILE": ("crypto", "profile"),
    "MEDFED_KEK_FILE": ("crypto", "kek_file"),
}
_SECRET_WORDS = ("url", "password", "token", "secret", "key")


class ConfigError(MedfedError):
    """A wrong setting: ``key`` names it (``audit.max_batch``, ``MEDFED_PORT``)."""

    code = "CONFIG_INVALID"

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class MedfedConfig(BaseSettings):
    """Every table of ``medfed.toml``; read a setting as ``settings.config.<table>.<key>``."""

    model_config = SettingsConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    server: ServerTable = ServerTable()
    data: DataTable = DataTable()
    sources: list[SourceEntry] = Field(default_factory=list)
    gateway: GatewayTable = GatewayTable()
    federation: FederationTable = FederationTable()
    health: HealthSettings = HealthSettings()
    limits: LimitsTable = LimitsTable()
    cors: CorsTable = CorsTable()
    telemetry: TelemetrySettings = TelemetrySettings()
    audit: AuditSettings = AuditSettings()
    records: RecordsSettings = RecordsSettings()
    identity: IdentityTable = IdentityTable()
    witness: WitnessTable = WitnessTable()
    recognition: RecognitionSettings = RecognitionSettings()
    documents: DocumentPolicy = DocumentPolicy()
    pages: PagesSettings = PagesSettings()
    supervision: SupervisionTable = SupervisionTable()
    crypto: CryptoTable = CryptoTable()
    sealing: SealingTable = SealingTable()


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._given = dict(environ)
        super().__init__(MedfedConfig)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._given.items()}  # case-insensitive


def environment_values(
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The ``MEDFED_*`` values as nested tables, and for each key path the variable it came
    from (for messages)."""
    env = dict(os.environ if env is None else env)
    origins: dict[tuple[str, ...], str] = {}
    for short, path in ENV_ALIASES.items():
        if short in env:
            long = ENV_PREFIX + "__".join(path).upper()
            env.setdefault(long, env[short])
            origins[path] = short
    try:
        found = _Environment(env)()
    except SettingsError as exc:
        cause = exc.__cause__ or exc
        raise ConfigError("environment", f"{exc} ({cause})") from None
    for keys in _paths(found):
        origins.setdefault(keys, ENV_PREFIX + "__".join(keys).upper())
    return found, origins


def _paths(values: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            yield from _paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged into ``base`` (tables merge; values and arrays replace)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_config(
    file_values: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> tuple[MedfedConfig, dict[str, Any]]:
    """The checked model of the file's tables with the environment over them, and the merged
    raw tables (kept for :meth:`gateway.config.Settings.with_tables`)."""
    from_env, origins = environment_values(env)
    merged = merge(file_values, from_env)
    return validate(merged, origins), merged


def validate(
    values: Mapping[str, Any], origins: Mapping[tuple[str, ...], str] = {}
) -> MedfedConfig:
    try:
        config = MedfedConfig.model_validate(values)
    except ValidationError as exc:
        raise _first_mistake(exc, origins) from None
    found = _cross_mistake(config)
    if found is not None:
        path, problem = found
        raise ConfigError(_name(path, origins), problem)
    return config


def _cross_mistake(
    value: Any, path: tuple[str | int, ...] = ()
) -> tuple[tuple[str | int, ...], str] | None:
    """The first :meth:`Table.mistake` of any table, depth first, with its full key path."""
    if isinstance(value, Table):
        own = value.mistake()
        if own is not None:
            return (*path, own[0]), own[1]
    if isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            found = _cross_mistake(getattr(value, name), (*path, field.alias or name))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _cross_mistake(item, (*path, i))
            if found is not None:
                return found
    return None


def _first_mistake(exc: ValidationError, origins: Mapping[tuple[str, ...], str]) -> ConfigError:
    error = exc.errors(include_url=False)[0]
    # A source's kind picks its table; pydantic puts that tag in the path, a reader does not.
    loc = [
        part
        for i, part in enumerate(error["loc"])
        if not (part in KINDS and i > 0 and isinstance(error["loc"][i - 1], int))
    ]
    kind, message, given = error["type"], error["msg"], error.get("input")
    if kind == "extra_forbidden":
        problem = "is not a setting (unknown key)"
    elif kind == "missing":
        problem = "is required"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        loc.append("kind")
        shown = f"'{given.get('kind')}' " if isinstance(given, Mapping) else ""
        problem = f"{shown}is not one of {', '.join(KINDS)}"
    elif kind == "value_error":
        problem = message.removeprefix("Value error, ")
    else:
        problem = message[:1].lower() + message[1:]
        leaf = str(loc[-1]) if loc else ""
        if isinstance(given, str | int | float | bool) and not any(
            word in leaf for word in _SECRET_WORDS
        ):
            problem += f", not {given!r}"
    return ConfigError(_name(tuple(loc), origins), problem)


def _name(path: tuple[str | int, ...], origins: Mapping[tuple[str, ...], str]) -> str:
    """``sources[0].region`` for a file key, the variable's name for an environment one."""
    for cut in range(len(path), 0, -1):
        head = path[:cut]
        if all(isinstance(p, str) for p in head) and head in origins:
            return origins[head]  # type: ignore[index]
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "configuration"
