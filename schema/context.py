"""Per-request context: who asks and why, the sources, the guard, the loaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError

from connectors.domain.recognition import RecognitionCatalogue
from connectors.fanout import Deadline, SourceFailure
from connectors.registry import SourceRegistry
from security.crypto import BlindIndexer, FieldCipher
from security.enforcement import FieldGuard, Relation
from security.identity.principal import Principal
from security.identity.roles import Purpose, Role


@dataclass
class Services:
    """What lives for the whole process and every request shares."""

    registry: SourceRegistry
    cipher: FieldCipher
    indexer: BlindIndexer
    recognition: RecognitionCatalogue
    deadline_seconds: float = 5.0
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestContext:
    services: Services
    principal: Principal
    purpose: Purpose
    guard: FieldGuard
    deadline: Deadline
    request: Any = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    now: datetime = field(default_factory=datetime.now)
    failures: dict[str, tuple[SourceFailure, list | None]] = field(default_factory=dict)
    _loaders: Any = None

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
    def relation_to(self, person_ref: str | None, _row: dict | None = None) -> Relation:
        if person_ref is not None and person_ref == self.principal.person_ref:
            return Relation.SELF
        return Relation.NONE

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
                extensions={"code": "SOURCE_UNAVAILABLE", "source": name},
            )
            for name, (failure, path) in self.failures.items()
        ]
