"""Trusted documents at the view: resolve ``extensions.persistedQuery.sha256Hash`` to its
registered text, and hold partner roles to registered documents only."""

from __future__ import annotations

from typing import Any

from security.documents import DocumentPolicy, DocumentStore, document_hash, persisted_hash
from security.errors import MedfedError


class Refusal(MedfedError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def resolve_trusted(
    request_data: Any, principal: Any, store: DocumentStore | None, policy: DocumentPolicy
) -> Any:
    """The registered document the request names (its text put in ``request_data.query``),
    None for a free-form operation the caller may send; raises Refusal otherwise."""
    digest = persisted_hash(getattr(request_data, "extensions", None))
    restricted = principal is not None and principal.role.value in policy.trusted_only_roles
    if digest is None:
        if restricted:
            raise Refusal(
                403,
                "PERSISTED_QUERY_NOT_TRUSTED",
                f"role {principal.role.value} may only run registered operations: "
                "send extensions.persistedQuery.sha256Hash",
            )
        return None
    if digest is False:
        raise Refusal(
            400,
            "PERSISTED_QUERY_NOT_FOUND",
            "extensions.persistedQuery.sha256Hash must be 64 lowercase hex digits",
        )
    if request_data.query and document_hash(request_data.query) != digest:
        raise Refusal(
            400,
            "PERSISTED_QUERY_HASH_MISMATCH",
            "the query text does not match extensions.persistedQuery.sha256Hash",
        )
    found = await store.get(digest) if store is not None else None
    if found is None:
        # Final, unlike Apollo's automatic persisted queries: nothing registers on the fly.
        raise Refusal(
            400,
            "PERSISTED_QUERY_NOT_FOUND",
            "no registered operation has this hash (register it with `medfed documents add FILE`)",
        )
    request_data.query = found.text
    return found
