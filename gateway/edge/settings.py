"""What the HTTP edge needs from ``[limits]`` and ``[cors]`` (both typed in gateway.config)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings


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


def edge_settings(settings: Settings) -> EdgeSettings:
    limits = settings.config.limits
    return EdgeSettings(
        max_body_bytes=limits.max_body_bytes,
        max_json_depth=limits.max_json_depth,
        rate_limits=limits.rate_limits,
        principal_rate=limits.principal_rate,
        principal_burst=limits.principal_burst,
        org_rate=limits.org_rate,
        org_burst=limits.org_burst,
        redis_url=limits.redis_url,
        cors_origins=tuple(settings.config.cors.origins),
    )
