"""Running one mutation call at most once under the caller's idempotency key.

The order matters: a key already used for another input is refused and a finished one is
replayed *before* validation (a replay must not fail because the world moved on); the key is
claimed only once the input is valid (a rejected input does not use the key up); the write
lands on a primary key derived from the key, so a retry after a crash or a racing twin
converges on the same row; the key is completed last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from graphql import GraphQLError

from schema.errors import IDEMPOTENCY_KEY_REUSED
from schema.mutations.validation import Problems
from security.idempotency import (
    KEY_RULE,
    IdempotencyStore,
    caller_digest,
    derive_id,
    key_problem,
    request_hash,
)


@dataclass(frozen=True)
class Created:
    """Where a mutation's object lives: a source name (or ``gateway``) and its key."""

    source: str
    object_id: str


def canonical(value: Any) -> Any:
    """Plain JSON for hashing: equal inputs give equal JSON whatever their spelling
    (``12.5`` and ``12.50`` yuan, enum members and their names, dates and their ISO form)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(canonical(v) for v in value)
    return value


def key_reused(operation: str) -> GraphQLError:
    return GraphQLError(
        f"{operation}: this idempotencyKey was already used with a different input; "
        "use a new key for a new request",
        extensions={"code": IDEMPOTENCY_KEY_REUSED},
    )


class IdempotentCall:
    """One call of ``operation`` under ``key`` by the request's caller."""

    def __init__(self, ctx: Any, operation: str, key: str, problems: Problems) -> None:
        engine = ctx.services.gateway_engine
        if engine is None:
            raise RuntimeError("mutations need the gateway database (Services.gateway_engine)")
        self.operation = operation
        self.key = key
        self.caller = caller_digest(ctx.principal.issuer, ctx.principal.sub)
        self.store = IdempotencyStore(engine)
        self.valid_key = key_problem(key) is None
        if not self.valid_key:
            problems.add(["idempotencyKey"], KEY_RULE)
        self._hash: str | None = None

    def new_id(self, prefix: str, length: int) -> str:
        """The primary key this call's object gets, the same on every retry."""
        return derive_id(prefix, length, self.operation, self.caller, self.key)

    async def earlier(self, canonical_input: Any) -> Created | None:
        """The object an earlier call with this key and input created; None to go on.
        Raises IDEMPOTENCY_KEY_REUSED when the key was used for something else."""
        self._hash = request_hash(self.operation, canonical(canonical_input))
        if not self.valid_key:
            return None
        use = await self.store.find(self.caller, self.key)
        if use is None:
            return None
        if not use.same_request(self.operation, self._hash):
            raise key_reused(self.operation)
        if use.completed and use.source and use.object_id:
            return Created(use.source, use.object_id)
        return None  # claimed but unfinished (a crash or a twin in flight): redo, converge

    async def claim(self) -> Created | None:
        """Claim the key for this input. Returns what a twin finished meanwhile, if it did."""
        assert self._hash is not None, "call earlier() first"
        use = await self.store.reserve(self.caller, self.key, self.operation, self._hash)
        if not use.same_request(self.operation, self._hash):
            raise key_reused(self.operation)
        if use.completed and use.source and use.object_id:
            return Created(use.source, use.object_id)
        return None

    async def done(self, created: Created) -> None:
        await self.store.complete(self.caller, self.key, created.source, created.object_id)
