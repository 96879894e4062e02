"""Whose trace context a request's server span continues.

A ``traceparent`` is the caller's text. Followed from anyone, it lets any client choose the
trace id its requests are filed under (colliding with, or splicing into, another trace) and
set the sampled flag, forcing every request of its own to be traced and exported, which
``sample_ratio`` exists to prevent. So the context is continued only from a trusted caller:
a federation router or a peer gateway, named by network address in ``[telemetry]
trusted_trace_callers``. Anyone else's request starts a trace of its own, sampled by the
gateway's ratio, and keeps the caller's context as a span link, so a trace the client
recorded can still be found from ours.

The address is the connection's peer as uvicorn reports it (``scope["client"]``): the
socket's, or the forwarded one when the connection came from an address uvicorn's
``forwarded_allow_ips`` trusts (a proxy that appends its client). Never list a load
balancer's or proxy's own address here: everyone behind it would be trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HEADERS = (b"traceparent", b"tracestate", b"baggage")
EMPTY = Context()


class TraceTrust:
    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)
        self.trusted = lru_cache(maxsize=4096)(self._trusted)

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # a unix socket, a test client's name: not an address we listed
            return False
        return any(address in network for network in self.networks)

    def parent(self, scope: Scope) -> tuple[Context, list[Link] | None]:
        """The context the server span starts in, and the links it carries."""
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers", ())
            if k in _HEADERS
        }
        if not carrier:
            return EMPTY, None
        incoming = propagate.extract(carrier)
        client = scope.get("client")
        if self.networks and client and self.trusted(str(client[0])):
            return incoming, None
        offered = trace.get_current_span(incoming).get_span_context()
        return EMPTY, ([Link(offered)] if offered.is_valid else None)
