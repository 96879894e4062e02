"""Trusted documents: operations registered ahead of time and referenced by SHA-256 hash
(Apollo's persisted-query protocol: ``extensions.persistedQuery.sha256Hash``).

Partner roles listed in ``[documents] trusted_only_roles`` may run nothing else. Each
registered document is parsed and validated when first used and kept for the life of the
process, so registered operations never pay for parsing again and no flood of one-off
queries can push them out of a cache.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, parse
from pydantic import Field
from sqlalchemy import DateTime, String, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from security.errors import MedfedError
from security.identity.roles import Role
from security.store import GatewayBase, insert_if_absent
from security.tables import Table

_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_TRUSTED_ONLY_ROLES: tuple[Role, ...] = ()


class TrustedDocumentRow(GatewayBase):
    __tablename__ = "trusted_documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


def document_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrustedDocument:
    sha256: str
    text: str
    document: DocumentNode


class DocumentError(MedfedError, ValueError):
    """A document that cannot be registered (not GraphQL, no operation)."""


def check_document(text: str) -> list[str]:
    """The operation names in ``text``; raises DocumentError if it is not one document."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        raise DocumentError(f"not a GraphQL document: {exc.message}") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        raise DocumentError("the document has no operation")
    return [op.name.value if op.name else "(anonymous)" for op in operations]


class DocumentStore:
    """Registered documents in the gateway database, with the parsed forms in memory."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._parsed: dict[str, TrustedDocument] = {}

    async def add(self, text: str, name: str | None = None) -> tuple[str, bool]:
        """Register ``text``; returns its hash and whether it was new."""
        check_document(text)
        digest = document_hash(text)
        async with self.engine.begin() as conn:
            added = await insert_if_absent(
                conn,
                TrustedDocumentRow.__table__,
                {"sha256": digest, "name": name, "body": text, "added_at": datetime.now(UTC)},
            )
        return digest, added

    async def get(self, digest: str) -> TrustedDocument | None:
        if not _HASH_RE.match(digest):
            return None
        found = self._parsed.get(digest)
        if found is not None:
            return found
        # Misses go to the database, so a document added while serving works at once.
        async with self.engine.connect() as conn:
            body = (
                await conn.execute(
                    select(TrustedDocumentRow.body).where(TrustedDocumentRow.sha256 == digest)
                )
            ).scalar_one_or_none()
        if body is None or document_hash(body) != digest:
            return None
        found = TrustedDocument(digest, body, parse(body))
        self._parsed[digest] = found
        return found


class DocumentPolicy(Table):
    """``[documents]``: the roles held to trusted documents."""

    # A role name is text in the file: the enum is matched by value.
    trusted_only_roles: list[Annotated[Role, Field(strict=False)]] = Field(
        default_factory=lambda: list(DEFAULT_TRUSTED_ONLY_ROLES)
    )


def persisted_hash(extensions: Mapping[str, Any] | None) -> str | bool | None:
    """The hash named in ``extensions.persistedQuery``; None when absent, False if malformed."""
    if not extensions or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, Mapping):
        return False
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _HASH_RE.match(digest):
        return False
    return digest
