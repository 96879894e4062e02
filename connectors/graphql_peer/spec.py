"""The configuration of one peer: ``[[sources]] kind = "peer"``, a typed table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field

from security.errors import MedfedError
from security.tables import NonEmpty, Table

PeerPurpose = Literal[
    "TREATMENT",
    "SETTLEMENT",
    "FUND_SUPERVISION",
    "PATIENT_ACCESS",
    "RESEARCH",
    "UNDERWRITING",
    "AUDIT",
    "EMERGENCY",
]
PURPOSES: tuple[str, ...] = get_args(PeerPurpose)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class PeerTable(Table):
    """One ``[[sources]]`` entry with ``kind = "peer"`` as the file gives it."""

    name: str  # checked with the other sources' names (gateway.config.sources)
    kind: Literal["peer"]
    url: NonEmpty
    token_file: NonEmpty
    purpose: PeerPurpose
    ca_file: NonEmpty | None = None
    client_cert: NonEmpty | None = None
    client_key: NonEmpty | None = None
    region: str | None = None
    timeout_seconds: Annotated[float, Field(ge=0.1, le=120)] = 3.0
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    breaker_failures: Annotated[int, Field(ge=1, le=1000)] = 3
    breaker_cooldown_seconds: Annotated[float, Field(ge=0.1, le=3600)] = 10.0


class PeerConfigError(MedfedError, ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


@dataclass(frozen=True)
class PeerSpec:
    name: str
    url: str
    token_file: Path
    purpose: str
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    region: str | None = None
    timeout_seconds: float = 3.0
    retries: int = 1
    breaker_failures: int = 3
    breaker_cooldown_seconds: float = 10.0
    kind: str = "peer"


def _file(key: str, raw: str, base: Path) -> Path:
    path = Path(raw) if Path(raw).is_absolute() else base / raw
    if not path.is_file():
        raise PeerConfigError(key, f"'{path}' does not exist")
    return path


def parse_peer(key: str, table: PeerTable, base: Path) -> PeerSpec:
    """``key`` is ``sources[i]``; ``base`` resolves relative file paths (the config's folder).
    Types and ranges were checked with the table; this checks what needs the files and the
    URL together."""
    url = table.url
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise PeerConfigError(f"{key}.url", f"'{url}' must be the peer's https://…/graphql URL")
    # Plain HTTP carries a bearer token and personal data in clear: loopback only (tests).
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise PeerConfigError(f"{key}.url", "must use https (http is allowed on loopback only)")
    token_file = _file(f"{key}.token_file", table.token_file, base)
    ca_file = _file(f"{key}.ca_file", table.ca_file, base) if table.ca_file else None
    if parts.scheme == "https" and ca_file is None:
        raise PeerConfigError(
            f"{key}.ca_file", "an https peer needs the CA that signs its certificate"
        )
    cert = _file(f"{key}.client_cert", table.client_cert, base) if table.client_cert else None
    cert_key = _file(f"{key}.client_key", table.client_key, base) if table.client_key else None
    if cert_key is not None and cert is None:
        raise PeerConfigError(f"{key}.client_key", "is set without client_cert")
    return PeerSpec(
        name=table.name,
        url=url,
        token_file=token_file,
        purpose=table.purpose,
        ca_file=ca_file,
        client_cert=cert,
        client_key=cert_key,
        region=table.region,
        timeout_seconds=table.timeout_seconds,
        retries=table.retries,
        breaker_failures=table.breaker_failures,
        breaker_cooldown_seconds=table.breaker_cooldown_seconds,
    )
