"""The ``[identity]`` table of ``medfed.toml``::

[identity]
issuers_file = "{data_dir}/keys/issuers.toml"   # trusted issuers and their public keys
audience = "medfed"                             # the aud every token must carry
leeway_seconds = 60                             # tolerated clock skew, 0-300
max_lifetime_seconds = 43200                    # longest exp - iat accepted, 60-86400
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from security.identity.verify import DEFAULT_LEEWAY_SECONDS, DEFAULT_MAX_LIFETIME_SECONDS

DEFAULT_AUDIENCE = "medfed"
ISSUERS_FILE = "issuers.toml"
MAX_LEEWAY_SECONDS = 300
MIN_LIFETIME_SECONDS, MAX_LIFETIME_SECONDS = 60, 24 * 3600


class IdentityConfigError(ValueError):
    """A bad ``[identity]`` setting; ``str()`` is ``"identity.<key>: <problem>"``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    issuers_file: Path
    audience: str
    leeway_seconds: int
    max_lifetime_seconds: int
    uses_default_issuers_file: bool


def default_issuers_file(data_dir: Path) -> Path:
    return Path(data_dir) / "keys" / ISSUERS_FILE


def load_identity_settings(raw: object, data_dir: Path) -> IdentitySettings:
    """Parse ``settings.extra.get("identity", {})``; ``{data_dir}`` in ``issuers_file`` is
    replaced by the data directory."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise IdentityConfigError("identity", "must be a table ([identity])")
    allowed = ("issuers_file", "audience", "leeway_seconds", "max_lifetime_seconds")
    for key in raw:
        if key not in allowed:
            raise IdentityConfigError(
                f"identity.{key}", f"is not an identity setting (use {', '.join(allowed)})"
            )
    default_file = default_issuers_file(data_dir)
    issuers_file = default_file
    if "issuers_file" in raw:
        value = raw["issuers_file"]
        if not isinstance(value, str) or not value.strip():
            raise IdentityConfigError("identity.issuers_file", "must be a file path")
        issuers_file = Path(value.replace("{data_dir}", Path(data_dir).as_posix())).expanduser()
    audience = raw.get("audience", DEFAULT_AUDIENCE)
    if not isinstance(audience, str) or not audience.strip():
        raise IdentityConfigError("identity.audience", "must be a non-empty string")
    leeway = _bounded_int(raw, "leeway_seconds", DEFAULT_LEEWAY_SECONDS, 0, MAX_LEEWAY_SECONDS)
    lifetime = _bounded_int(
        raw,
        "max_lifetime_seconds",
        DEFAULT_MAX_LIFETIME_SECONDS,
        MIN_LIFETIME_SECONDS,
        MAX_LIFETIME_SECONDS,
    )
    return IdentitySettings(
        issuers_file=issuers_file,
        audience=audience,
        leeway_seconds=leeway,
        max_lifetime_seconds=lifetime,
        uses_default_issuers_file=issuers_file == default_file,
    )


def _bounded_int(raw: Mapping, key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise IdentityConfigError(f"identity.{key}", f"{value!r} is not a whole number of seconds")
    if not low <= value <= high:
        raise IdentityConfigError(f"identity.{key}", f"{value} is outside {low}-{high}")
    return value
