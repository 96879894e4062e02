"""What a source is: the description the configuration gives of one institution's database."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.sql.models.base import SOURCE_KINDS

__all__ = ["SOURCE_KINDS", "SourceSpec"]


@dataclass(frozen=True)
class SourceSpec:
    """One configured source.

    ``region`` is the province for a bureau and the region of a hospital or pharmacy;
    ``institution`` is the institution code of a hospital or pharmacy; ``schema`` is the
    PostgreSQL schema the source lives in when several share one database (``None`` for a
    database of its own, as every SQLite file is).
    """

    name: str
    kind: str
    url: str
    region: str | None = None
    institution: str | None = None
    schema: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")
