"""``[limits]`` (HTTP-level keys) and ``[cors]`` from the configuration file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config import ConfigError, Settings
from schema.limits import OperationLimits

_OPERATION_KEYS = frozenset(OperationLimits.__dataclass_fields__)


@dataclass(frozen=True)
class EdgeSettings:
    max_body_bytes: int = 100_000
    max_json_depth: int = 32  # objects and arrays nested in the body (one limit, one parse)
    rate_limits: bool = True
    principal_rate: float = 20.0  # requests per second, refilled continuously
    principal_burst: int = 60
    org_rate: float = 200.0
    org_burst: int = 600
    redis_url: str | None = None
    cors_origins: tuple[str, ...] = ()


def _positive(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"limits.{key}", f"'{value}' must be a positive number")
    return kind(value)


def edge_settings(settings: Settings) -> EdgeSettings:
    raw: Mapping[str, Any] = settings.extra.get("limits") or {}
    cors: Mapping[str, Any] = settings.extra.get("cors") or {}
    if not isinstance(raw, Mapping) or not isinstance(cors, Mapping):
        raise ConfigError("limits", "[limits] and [cors] must be tables")
    known = set(EdgeSettings.__dataclass_fields__) - {"cors_origins"}
    unknown = set(raw) - known - _OPERATION_KEYS
    if unknown:
        raise ConfigError(f"limits.{sorted(unknown)[0]}", "is not a limit setting")
    values: dict[str, Any] = {}
    if "max_json_depth" in raw:
        depth = raw["max_json_depth"]
        if isinstance(depth, bool) or not isinstance(depth, int) or not 2 <= depth <= 512:
            raise ConfigError("limits.max_json_depth", f"'{depth}' must be an integer 2-512")
        values["max_json_depth"] = depth
    for key in ("max_body_bytes", "principal_burst", "org_burst"):
        if key in raw:
            values[key] = _positive(key, raw[key], int)
    for key in ("principal_rate", "org_rate"):
        if key in raw:
            values[key] = _positive(key, raw[key], float)
    if "rate_limits" in raw:
        if not isinstance(raw["rate_limits"], bool):
            raise ConfigError("limits.rate_limits", "must be true or false")
        values["rate_limits"] = raw["rate_limits"]
    if "redis_url" in raw:
        url = raw["redis_url"]
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://")):
            raise ConfigError("limits.redis_url", f"'{url}' is not a redis:// URL")
        values["redis_url"] = url
    origins = cors.get("origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ConfigError("cors.origins", 'must be a list of origins like "https://app.example.cn"')
    if "*" in origins:
        # Credentials (bearer tokens) are in play: a wildcard would let any site read answers.
        raise ConfigError("cors.origins", "'*' is not allowed; list the front-end origins")
    values["cors_origins"] = tuple(o.rstrip("/").lower() for o in origins)
    return EdgeSettings(**values)


def operation_limits(settings: Settings) -> OperationLimits:
    try:
        return OperationLimits.from_mapping(settings.extra.get("limits"))
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(key, problem) from None
