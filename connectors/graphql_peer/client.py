"""One pooled HTTP client per peer: its own token and purpose, verified TLS, the request's
deadline, bounded retries for reads, and a circuit breaker."""

from __future__ import annotations

import asyncio
import random
import ssl
from typing import Any

import httpx

from connectors import observe
from connectors.graphql_peer.breaker import BreakerOpen, CircuitBreaker
from connectors.graphql_peer.spec import PeerSpec
from connectors.health import Reasoned


class PeerError(Reasoned):
    """The peer did not give a usable answer. ``reason`` is a stable code; the message never
    holds data values."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}{f' ({detail})' if detail else ''}")
        self.reason = reason


# Stable reasons for a peer (beside connectors.health.Reason for SQL sources).
BREAKER_OPEN = "BREAKER_OPEN"  # failed too often; not called until its cooldown passes
PEER_UNREACHABLE = "PEER_UNREACHABLE"  # no connection (refused, reset, TLS refused)
PEER_TIMEOUT = "PEER_TIMEOUT"  # connected, but no answer in time
PEER_REFUSED = "PEER_REFUSED"  # 401 or 403: the peer does not accept our token
PEER_ERROR = "PEER_ERROR"  # another HTTP status
PEER_BAD_ANSWER = "PEER_BAD_ANSWER"  # not JSON, no data, or data of the wrong shape


class PeerClient:
    def __init__(self, spec: PeerSpec) -> None:
        self.spec = spec
        self.breaker = CircuitBreaker(spec.breaker_failures, spec.breaker_cooldown_seconds)
        self._token: tuple[tuple[int, int], str] | None = None
        verify: ssl.SSLContext | bool = True
        if spec.ca_file is not None:
            # Only the configured CA: a certificate from any public CA is not this peer.
            verify = ssl.create_default_context(cafile=str(spec.ca_file))
            if spec.client_cert is not None:
                verify.load_cert_chain(
                    str(spec.client_cert), str(spec.client_key) if spec.client_key else None
                )
        self.http = httpx.AsyncClient(
            verify=verify,
            timeout=spec.timeout_seconds,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    @property
    def name(self) -> str:
        return self.spec.name

    def token(self) -> str:
        """The token file, re-read when it changes (rotation without a restart)."""
        stat = self.spec.token_file.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._token is None or self._token[0] != stamp:
            value = self.spec.token_file.read_text(encoding="utf-8").strip()
            if not value:
                raise PeerError(PEER_REFUSED, "our token file is empty")
            self._token = (stamp, value)
        return self._token[1]

    async def query(
        self, document: str, variables: dict[str, Any], remaining: float, *, idempotent: bool = True
    ) -> dict[str, Any]:
        """The ``data`` of one GraphQL query, within ``remaining`` seconds. Retries happen
        only for idempotent reads and only while the deadline leaves room."""
        try:
            self.breaker.admit()
        except BreakerOpen:
            raise PeerError(BREAKER_OPEN) from None
        loop = asyncio.get_running_loop()
        until = loop.time() + remaining
        attempts = 1 + (self.spec.retries if idempotent else 0)
        for attempt in range(attempts):
            left = until - loop.time()
            try:
                data = await self._once(document, variables, min(left, self.spec.timeout_seconds))
            except PeerError:
                backoff = random.uniform(0.05, 0.15) * (2**attempt)  # jitter: no herd
                if attempt + 1 < attempts and until - loop.time() > backoff + 0.1:
                    await asyncio.sleep(backoff)
                    continue
                self.breaker.failure()
                raise
            except BaseException:
                # Cancelled by the request's deadline: the peer was too slow, which counts.
                self.breaker.failure()
                raise
            self.breaker.success()
            return data
        raise AssertionError("unreachable")

    async def _once(self, document: str, variables: dict[str, Any], budget: float) -> dict:
        if budget <= 0:
            raise PeerError(PEER_TIMEOUT, "no time left")
        headers = {"Authorization": f"Bearer {self.token()}", "X-Purpose-Of-Use": self.spec.purpose}
        observe.statement()  # a peer's "statement" is a request sent, retries included
        try:
            response = await self.http.post(
                self.spec.url,
                headers=headers,
                timeout=budget,
                json={"query": document, "variables": variables},
            )
        except httpx.TimeoutException:
            raise PeerError(PEER_TIMEOUT) from None
        except httpx.HTTPError:
            raise PeerError(PEER_UNREACHABLE) from None
        if response.status_code in (401, 403):
            raise PeerError(PEER_REFUSED, f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise PeerError(PEER_ERROR, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested beyond any parser
            raise PeerError(PEER_BAD_ANSWER, "not JSON") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise PeerError(PEER_BAD_ANSWER, "no data")
        return data

    async def close(self) -> None:
        await self.http.aclose()
