"""``_service { sdl }`` answers only the federation router, or anyone in dev mode.

The SDL is the whole schema, every field's data class and level included: introspection by
another name. Routers that compose at run time (Apollo's ``IntrospectAndCompose``) need it;
``medfed supergraph`` and Hive Gateway with a supergraph file do not (the supergraph is
composed from the code). The router proves itself like any caller, with a token from a
trusted issuer; ``[[federation.routers]]`` lists the ``issuer`` and ``sub`` of the tokens
that may read the SDL. Everyone else gets ``FORBIDDEN``.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLSchema

from schema.errors import forbidden


def may_read_sdl(ctx: Any) -> bool:
    principal = getattr(ctx, "principal", None)
    services = getattr(ctx, "services", None)
    routers = getattr(services, "router_principals", frozenset())
    return principal is not None and (principal.issuer, principal.sub) in routers


def gate_service_sdl(schema: GraphQLSchema) -> None:
    """Wrap the resolver of ``Query._service`` (aliases and fragments reach the same one)."""
    field = schema.query_type.fields.get("_service") if schema.query_type else None
    if field is None or field.resolve is None:
        return
    original = field.resolve

    def resolve(root: Any, info: Any, **kwargs: Any) -> Any:
        if not may_read_sdl(info.context):
            raise forbidden(
                "_service is only for the federation router's credentials ([[federation.routers]])"
            )
        return original(root, info, **kwargs)

    field.resolve = resolve
