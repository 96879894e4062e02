"""Per-request context: who asks and why, the sources, the guard, the loaders."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.domain.benefits import Benefits, default_benefits
from connectors.domain.recognition import RecognitionCatalogue
from connectors.fanout import DEFAULT_PEER_SHARE, Deadline, SourceFailure
from connectors.registry import SourceRegistry
from connectors.supervision.rules import RuleBase, default_rules
from schema.relations import Relations
from security.catalogue import Catalogue, default_catalogue
from security.crypto import BlindIndexer, FieldCipher
from security.enforcement import Decider, FieldGuard, Relation
from security.identity.principal import Principal
from security.identity.roles import Purpose, Role
from security.policy import Policy, default_policy, make_decider
from security.policy.break_glass import Reason


@dataclass
class Services:
    """What lives for the whole process and every request shares."""

    registry: SourceRegistry
    cipher: FieldCipher
    indexer: BlindIndexer
    recognition: RecognitionCatalogue
    deadline_seconds: float = 5.0
    # The part of that deadline peers may use; the rest is kept for local sources.
    peer_deadline_share: float = DEFAULT_PEER_SHARE
    statistics_deadline_seconds: float = 60.0
    extras: dict[str, Any] = field(default_factory=dict)
    # The gateway's own database (consents, idempotency keys); None where nothing writes.
    gateway_engine: AsyncEngine | None = None
    # Field-level authorization: the data catalogue and the policy decided from it.
    # (issuer, sub) of the federation router's tokens: the only callers that may read
    # `_service { sdl }` outside dev mode ([[federation.routers]]).
    router_principals: frozenset[tuple[str, str]] = frozenset()
    catalogue: Catalogue = field(default_factory=default_catalogue)
    policy: Policy = field(default_factory=default_policy)
    # Benefits by rule (connectors/domain/benefits.toml): what recordSettlement computes.
    benefits: Benefits = field(default_factory=default_benefits)
    # The claims rule base (connectors/domain/claims_rules.toml), before and after settlement.
    claims_rules: RuleBase = field(default_factory=default_rules)
    _decider: Decider | None = None

    @property
    def decider(self) -> Decider:
        if self._decider is None:
            self._decider = make_decider(self.catalogue, self.policy)
        return self._decider


@dataclass
class RequestContext:
    services: Services
    principal: Principal
    purpose: Purpose
    guard: FieldGuard
    deadline: Deadline
    request: Any = None
    # The server's own id of this request (the edge's, as in the X-Request-Id answered): unique
    # and unpredictable, so the audit log and sealed answers may bind to it.
    request_id: str = field(default_factory=lambda: secrets.token_hex(16))
    # What the client offered in its X-Request-Id, if anything: kept beside ours, never trusted.
    client_request_id: str | None = None
    # Why an EMERGENCY request breaks the glass (the edge refused one without a reason).
    break_glass_reason: Reason | None = None
    now: datetime = field(default_factory=datetime.now)
    failures: dict[str, tuple[SourceFailure, list | None]] = field(default_factory=dict)
    # Set once a resolver of personal rows ran (each prepares their relations first): such a
    # request is audited even when it found no row it could show.
    asked_personal: bool = False
    # Sources whose rows this request built (or a mutation read or wrote): the data holders
    # its audit event names, by which an auditor's scope is decided.
    row_sources: set[str] = field(default_factory=set)
    _loaders: Any = None
    _relations: Relations | None = None
    # Projections' admitted field plans, per (projection, selection, person, relations):
    # the guard decides and records each once per request, each value then only applies it.
    admitted: dict[tuple, list] = field(default_factory=dict)

    # -- shortcuts --------------------------------------------------------------------------
    @property
    def registry(self) -> SourceRegistry:
        return self.services.registry

    @property
    def cipher(self) -> FieldCipher:
        return self.services.cipher

    @property
    def indexer(self) -> BlindIndexer:
        return self.services.indexer

    @property
    def loaders(self):
        if self._loaders is None:
            from schema.loaders import Loaders

            self._loaders = Loaders(self)
        return self._loaders

    @property
    def is_patient(self) -> bool:
        return self.principal.role == Role.PATIENT

    # -- relations --------------------------------------------------------------------------
    @property
    def relations(self) -> Relations:
        if self._relations is None:
            self._relations = Relations(self)
        return self._relations

    async def prepare_relations(self, person_refs: Iterable[str | None]) -> None:
        """Load the per-person relations (treating, consent, break-glass) of these persons in
        one batch; call before building projections of their rows."""
        self.asked_personal = True
        await self.relations.prepare(person_refs)

    def relation_to(
        self, person_ref: str | None, row: dict | None = None, data_class: str | None = None
    ) -> Relation:
        """The strongest relation of this row to the caller, for a field of ``data_class``
        (consent is per class). Synchronous: only prepared persons can be related."""
        return self.relations.relation(person_ref, row, data_class)

    def check(
        self, type_name: str, field_name: str, person_ref: str | None, row: dict | None
    ) -> None:
        """Gate of a resolver field (one that loads more rows): raises FieldDenied."""
        entry = self.services.catalogue.field(type_name, field_name)
        relation = self.relation_to(person_ref, row, entry.data_class if entry else None)
        self.guard.read(type_name, field_name, relation, person_ref, _nothing)

    def holder_orgs(self) -> list[str]:
        """The organisations holding the rows this request built (the audit event's data
        holders, by which an auditor's scope is decided)."""
        registry = self.registry
        found = {registry.holder(name) for name in self.row_sources}
        return sorted(org for org in found if org)

    # -- partial results --------------------------------------------------------------------
    def note_failures(self, failures: list[SourceFailure]) -> None:
        for failure in failures:
            self.failures.setdefault(failure.source, (failure, None))

    def attribute_failures(self, info: strawberry.Info) -> None:
        """Give failures seen so far the path of the first field that needed them."""
        for name, (failure, path) in list(self.failures.items()):
            if path is None:
                self.failures[name] = (failure, info.path.as_list())

    async def load(self, loader, key, info: strawberry.Info):
        result = await loader.load(key)
        if self.failures:
            self.attribute_failures(info)
        return result

    def failure_errors(self) -> list[GraphQLError]:
        return [
            GraphQLError(
                f"Source '{name}' did not answer ({failure.reason}); data from it is missing",
                path=path,
                extensions={"code": "SOURCE_UNAVAILABLE", "source": name, "reason": failure.reason},
            )
            for name, (failure, path) in self.failures.items()
        ]


def _nothing() -> None:
    return None
