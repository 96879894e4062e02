"""The HTTP edge: everything checked before a request reaches authentication or GraphQL
(size, method, content type, origin, request id, security headers) and, right after
authentication, the per-principal and per-organisation rate limits."""

from gateway.edge.middleware import EdgeMiddleware
from gateway.edge.ratelimit import RateLimitMiddleware, make_limiter
from gateway.edge.settings import EdgeSettings, edge_settings

__all__ = ["EdgeMiddleware", "EdgeSettings", "RateLimitMiddleware", "edge_settings", "make_limiter"]
