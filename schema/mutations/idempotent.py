"""Running one mutation call at most once under the caller's idempotency key.

The order matters: a key already used for another input is refused and a finished one is
replayed *before* validation (a replay must not fail because the world moved on); the key is
claimed only once the input is valid (a rejected input does not use the key up); the write
lands on a primary key derived from the key, so a retry after a crash or a racing twin
converges on the same row; the key is completed last.

The write itself goes through :meth:`IdempotentCall.write`: its *intent* is appended to the
audit log durably before it reaches the source, and its *outcome* after
(``security.audit.writes``); if either cannot be logged the request answers 503 and nothing
is acknowledged. A crash between the two leaves an intent without an outcome, which
``schema.mutations.reconcile`` settles by looking the object up at its source.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from graphql import GraphQLError

from schema.errors import IDEMPOTENCY_KEY_REUSED
from schema.mutations.validation import Problems
from security import failpoints
from security.audit import AuditWriteError
from security.audit import writes as audit_writes
from security.idempotency import (
    KEY_RULE,
    IdempotencyStore,
    caller_digest,
    derive_id,
    key_problem,
    request_hash,
)

log = logging.getLogger("medfed.audit")
RECORDER = "audit"  # the audit recorder in Services.extras
AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"


class AuditUnavailableForWrite(GraphQLError):
    """The write's intent or outcome could not be logged: the request must answer 503."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation}: the audit log is unavailable; nothing is acknowledged",
            extensions={"code": AUDIT_UNAVAILABLE},
        )


@dataclass(frozen=True)
class Target:
    """Where a write lands and how to find it there (see ``security.audit.writes.Write``)."""

    source: str
    table: str
    key: str
    object_id: str
    person: str | None = None
    applied_when: str | None = None


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

    # -- the write, between its intent and its outcome in the audit log -------------------
    def _write_of(self, target: Target) -> audit_writes.Write:
        return audit_writes.Write(
            operation=self.operation,
            source=target.source,
            table=target.table,
            key=target.key,
            object_id=target.object_id,
            applied_when=target.applied_when,
            key_digest=audit_writes.key_digest(self.caller, self.key),
        )

    async def _log(self, ctx: Any, event: dict[str, Any]) -> int | None:
        recorder = ctx.services.extras.get(RECORDER)
        if recorder is None:  # [audit] enabled = false: nothing to log into
            return None
        try:
            return await recorder.record(event)
        except AuditWriteError:
            log.error("audit log unavailable for %s of request %s", self.operation, ctx.request_id)
            ctx.audit_unavailable = True
            raise AuditUnavailableForWrite(self.operation) from None

    async def write(self, ctx: Any, target: Target, work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work`` (the write at the source) between its intent and its outcome."""
        from schema.mutations.reconcile import applied

        write = self._write_of(target)
        await failpoints.reach("mutation.before_intent")
        intent_event = audit_writes.intent_event(
            request_id=ctx.request_id,
            principal=ctx.principal,
            purpose=ctx.purpose,
            person=target.person,
            write=write,
            holder=ctx.services.registry.holder(write.source),
        )
        intent = await self._log(ctx, intent_event)
        await failpoints.reach("mutation.after_intent")
        try:
            await work()
        except Exception:
            # Did it land anyway (a timeout after the commit)? Ask; if the source cannot
            # say, the intent stays open for reconcile.
            if intent is not None:
                try:
                    found = await applied(ctx.services, write)
                except Exception:
                    found = None
                if found is not None:
                    await self._outcome(ctx, intent, intent_event, found)
            raise
        await failpoints.reach("mutation.after_write")
        if intent is not None:
            # Logged with the request's own event, before it is answered (one append less).
            outcomes = getattr(ctx, "write_outcomes", None)
            if outcomes is None:
                outcomes = ctx.write_outcomes = []
            outcomes.append(
                audit_writes.outcome_of(
                    intent, write, audit_writes.APPLIED, audit_writes.BY_REQUEST
                )
            )

    async def _outcome(
        self, ctx: Any, intent: int, intent_event: dict[str, Any], found: bool
    ) -> None:
        await self._log(
            ctx,
            audit_writes.outcome_event(
                intent=intent,
                intent_event=intent_event,
                result=audit_writes.APPLIED if found else audit_writes.NOT_APPLIED,
                by=audit_writes.BY_REQUEST,
                request_id=ctx.request_id,
            ),
        )
