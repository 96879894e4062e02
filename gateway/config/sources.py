"""``[[sources]]``: each entry a typed table by its kind, then resolved into the connectors'
:class:`SourceSpec` / :class:`PeerSpec` (database URLs filled in, peer files found)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from connectors.domain import codes
from connectors.graphql_peer.spec import PeerConfigError, PeerSpec, PeerTable, parse_peer
from connectors.sources import SourceSpec
from gateway.config.tables import database_url
from security.errors import MedfedError
from security.tables import Table

SQLITE_TEMPLATE = "sqlite+aiosqlite:///{data_dir}/sources/{name}.db"
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
SQL_KINDS = ("bureau", "hospital", "pharmacy", "platform", "directory")


class SourceTable(Table):
    """One ``[[sources]]`` entry of an institution's own database."""

    name: str
    kind: Literal["bureau", "hospital", "pharmacy", "platform", "directory"]
    region: str | None = None  # a bureau's province code
    institution: str | None = None  # a hospital's or pharmacy's national code
    url: str | None = None  # `{data_dir}` is expanded; unset: the SQLite file or a schema
    db_schema: str | None = Field(None, alias="schema")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else database_url(value)

    def mistake(self) -> tuple[str, str] | None:
        if self.kind == "bureau":
            if self.region is None:
                return "region", "a bureau needs its province code, e.g. 330000"
            if problem := codes.validate_province(self.region):
                return "region", problem
        if self.kind in ("hospital", "pharmacy"):
            if self.institution is None:
                return "institution", f"a {self.kind} needs its institution code"
            check = (
                codes.validate_institution if self.kind == "hospital" else codes.validate_pharmacy
            )
            if problem := check(self.institution):
                return "institution", problem
        return None


SourceEntry = Annotated[SourceTable | PeerTable, Field(discriminator="kind")]
KINDS = (*SQL_KINDS, "peer")


class SourceProblem(MedfedError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


def _name(key: str, name: str) -> None:
    if not _NAME_RE.match(name):
        raise SourceProblem(f"{key}.name", f"'{name}' must be lowercase letters, digits and -")


def resolve_sources(
    entries: list[SourceTable | PeerTable], data_dir: Path, shared_pg: str | None, base: Path
) -> tuple[tuple[SourceSpec, ...], tuple[PeerSpec, ...]]:
    """The connectors' specs; ``base`` resolves a peer's relative files (the config's folder)."""
    sources: list[SourceSpec] = []
    peers: list[PeerSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        key = f"sources[{i}]"
        _name(key, entry.name)
        if entry.name in seen:
            raise SourceProblem(f"{key}.name", f"'{entry.name}' is configured twice")
        seen.add(entry.name)
        if isinstance(entry, PeerTable):
            try:
                peers.append(parse_peer(key, entry, base))
            except PeerConfigError as exc:
                raise SourceProblem(exc.key or key, exc.problem) from None
            continue
        sources.append(_sql_source(entry, data_dir, shared_pg))
    if len([s for s in sources if s.kind == "directory"]) > 1:
        raise SourceProblem("sources", "only one institution directory may be configured")
    return tuple(sources), tuple(peers)


def _sql_source(entry: SourceTable, data_dir: Path, shared_pg: str | None) -> SourceSpec:
    region = entry.region
    if entry.kind in ("hospital", "pharmacy"):
        assert entry.institution is not None  # SourceTable.mistake() required it
        region = codes.region_of_institution(entry.institution)
    schema = entry.db_schema
    if entry.url is not None:
        url = entry.url.format(data_dir=data_dir.as_posix(), name=entry.name)
    elif shared_pg:
        url, schema = shared_pg, schema or entry.name.replace("-", "_")
    else:
        url = SQLITE_TEMPLATE.format(data_dir=data_dir.as_posix(), name=entry.name)
    return SourceSpec(
        name=entry.name,
        kind=entry.kind,
        url=url,
        region=region,
        institution=entry.institution,
        schema=schema,
    )
