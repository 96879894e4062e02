"""The configuration of one peer: ``[[sources]] kind = "peer"``, validated key by key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PURPOSES = (
    "TREATMENT",
    "SETTLEMENT",
    "FUND_SUPERVISION",
    "PATIENT_ACCESS",
    "RESEARCH",
    "UNDERWRITING",
    "AUDIT",
    "EMERGENCY",
)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
KEYS = {
    "name",
    "kind",
    "url",
    "token_file",
    "ca_file",
    "client_cert",
    "client_key",
    "purpose",
    "region",
    "timeout_seconds",
    "retries",
    "breaker_failures",
    "breaker_cooldown_seconds",
}


class PeerConfigError(ValueError):
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


def _file(key: str, raw: object, base: Path) -> Path:
    if not isinstance(raw, str) or not raw:
        raise PeerConfigError(key, f"'{raw}' must be a file path")
    path = Path(raw) if Path(raw).is_absolute() else base / raw
    if not path.is_file():
        raise PeerConfigError(key, f"'{path}' does not exist")
    return path


def _number(key: str, raw: object, low: float, high: float, integer: bool = False) -> float:
    ok = isinstance(raw, int) if integer else isinstance(raw, int | float)
    if isinstance(raw, bool) or not ok or not low <= raw <= high:
        kind = "an integer" if integer else "a number"
        raise PeerConfigError(key, f"'{raw}' must be {kind} from {low} to {high}")
    return raw


def parse_peer(key: str, raw: dict, name: str, base: Path) -> PeerSpec:
    """``key`` is ``sources[i]``; ``base`` resolves relative file paths (the config's folder)."""
    unknown = set(raw) - KEYS
    if unknown:
        raise PeerConfigError(f"{key}.{sorted(unknown)[0]}", "is not a peer setting")
    url = raw.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
        raise PeerConfigError(f"{key}.url", f"'{url}' must be the peer's https://…/graphql URL")
    # Plain HTTP carries a bearer token and personal data in clear: loopback only (tests).
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise PeerConfigError(f"{key}.url", "must use https (http is allowed on loopback only)")
    if "token_file" not in raw:
        raise PeerConfigError(f"{key}.token_file", "a peer needs the file holding its token")
    token_file = _file(f"{key}.token_file", raw["token_file"], base)
    ca_file = _file(f"{key}.ca_file", raw["ca_file"], base) if "ca_file" in raw else None
    if parts.scheme == "https" and ca_file is None:
        raise PeerConfigError(
            f"{key}.ca_file", "an https peer needs the CA that signs its certificate"
        )
    cert = _file(f"{key}.client_cert", raw["client_cert"], base) if "client_cert" in raw else None
    cert_key = _file(f"{key}.client_key", raw["client_key"], base) if "client_key" in raw else None
    if cert_key is not None and cert is None:
        raise PeerConfigError(f"{key}.client_key", "is set without client_cert")
    purpose = raw.get("purpose")
    if purpose not in PURPOSES:
        raise PeerConfigError(f"{key}.purpose", f"'{purpose}' is not one of {', '.join(PURPOSES)}")
    return PeerSpec(
        name=name,
        url=url,
        token_file=token_file,
        purpose=purpose,
        ca_file=ca_file,
        client_cert=cert,
        client_key=cert_key,
        region=raw.get("region"),
        timeout_seconds=float(
            _number(f"{key}.timeout_seconds", raw.get("timeout_seconds", 3.0), 0.1, 120)
        ),
        retries=int(_number(f"{key}.retries", raw.get("retries", 1), 0, 5, integer=True)),
        breaker_failures=int(
            _number(
                f"{key}.breaker_failures", raw.get("breaker_failures", 3), 1, 1000, integer=True
            )
        ),
        breaker_cooldown_seconds=float(
            _number(
                f"{key}.breaker_cooldown_seconds",
                raw.get("breaker_cooldown_seconds", 10.0),
                0.1,
                3600,
            )
        ),
    )
