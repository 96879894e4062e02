"""Per-principal and per-organisation token buckets, checked right after authentication.

In-process buckets by default; with ``[limits] redis_url`` the buckets live in Redis (one
atomic script per check) so every worker draws from the same bucket. If Redis cannot be
reached the request is refused (503): a limiter that silently stops limiting is no limiter.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.edge.responses import refuse
from gateway.edge.settings import EdgeSettings

log = logging.getLogger("medfed.edge")


@dataclass(frozen=True)
class Bucket:
    rate: float  # tokens per second
    burst: int  # capacity


class Limiter(Protocol):
    async def take(self, key: str, bucket: Bucket) -> float:
        """0 if a token was taken, else the seconds until one will be available."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Buckets in this process. The map is bounded: the least recently seen keys go first
    (a forgotten bucket restarts full, which only ever errs towards one extra burst)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.max_keys = max_keys

    async def take(self, key: str, bucket: Bucket) -> float:
        now = time.monotonic()
        tokens, updated = self.buckets.pop(key, (float(bucket.burst), now))
        tokens = min(float(bucket.burst), tokens + (now - updated) * bucket.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / bucket.rate
        self.buckets[key] = (tokens, now)
        if len(self.buckets) > self.max_keys:
            self.buckets.popitem(last=False)
        return wait

    async def close(self) -> None:
        return None


# KEYS[1] bucket; ARGV rate, burst. Redis's clock, so workers on several hosts agree.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class RedisLimiter:
    def __init__(self, url: str, prefix: str = "medfed:rl:") -> None:
        import redis.asyncio as aioredis

        self.client: Any = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.script = self.client.register_script(_TAKE)
        self.prefix = prefix

    async def take(self, key: str, bucket: Bucket) -> float:
        return float(await self.script(keys=[self.prefix + key], args=[bucket.rate, bucket.burst]))

    async def close(self) -> None:
        await self.client.aclose()


def make_limiter(settings: EdgeSettings) -> Limiter | None:
    if not settings.rate_limits:
        return None
    if settings.redis_url:
        return RedisLimiter(settings.redis_url)
    return MemoryLimiter()


class RateLimitMiddleware:
    """Sits inside ``AuthMiddleware``: the principal is known, and unauthenticated floods
    are already refused by the cheaper signature check."""

    def __init__(self, app: ASGIApp, limiter: Limiter | None, settings: EdgeSettings) -> None:
        self.app = app
        self.limiter = limiter
        self.principal_bucket = Bucket(settings.principal_rate, settings.principal_burst)
        self.org_bucket = Bucket(settings.org_rate, settings.org_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state", {})
        principal = state.get("principal")
        if scope["type"] != "http" or principal is None:
            await self.app(scope, receive, send)
            return
        note = state.get("edge")
        if isinstance(note, dict):
            note.update(role=principal.role.value, org=principal.org)
        if self.limiter is not None:
            try:
                wait = await self.limiter.take(
                    f"p:{principal.issuer}|{principal.sub}", self.principal_bucket
                )
                if wait == 0:  # a refused caller does not also drain the organisation's bucket
                    wait = await self.limiter.take(f"o:{principal.org}", self.org_bucket)
            except Exception as exc:
                log.error("rate limiter unavailable, refusing: %s", type(exc).__name__)
                await refuse(
                    send,
                    503,
                    "RATE_LIMIT_UNAVAILABLE",
                    "the gateway cannot check rate limits right now",
                )
                return
            if wait > 0:
                retry = max(1, math.ceil(wait))
                await refuse(
                    send,
                    429,
                    "RATE_LIMITED",
                    f"too many requests; retry after {retry} s",
                    headers=(("retry-after", str(retry)),),
                    retryAfter=retry,
                )
                return
        await self.app(scope, receive, send)
