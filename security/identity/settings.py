"""The ``[identity]`` table of ``medfed.toml`` (checked as :class:`IdentityTable`)::

[identity]
issuers_file = "{data_dir}/keys/issuers.toml"   # trusted issuers and their public keys
audience = "medfed"                             # the aud every token must carry
leeway_seconds = 60                             # tolerated clock skew, 0-300
max_lifetime_seconds = 43200                    # longest exp - iat accepted, 60-86400
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field

from security.identity.verify import DEFAULT_LEEWAY_SECONDS, DEFAULT_MAX_LIFETIME_SECONDS
from security.tables import NonEmpty, Table

DEFAULT_AUDIENCE = "medfed"
ISSUERS_FILE = "issuers.toml"
MAX_LEEWAY_SECONDS = 300
MIN_LIFETIME_SECONDS, MAX_LIFETIME_SECONDS = 60, 24 * 3600


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    issuers_file: Path
    audience: str
    leeway_seconds: int
    max_lifetime_seconds: int
    uses_default_issuers_file: bool


def default_issuers_file(data_dir: Path) -> Path:
    return Path(data_dir) / "keys" / ISSUERS_FILE


class IdentityTable(Table):
    """``[identity]`` as the file gives it."""

    issuers_file: NonEmpty | None = None
    audience: NonEmpty = DEFAULT_AUDIENCE
    leeway_seconds: Annotated[int, Field(ge=0, le=MAX_LEEWAY_SECONDS)] = DEFAULT_LEEWAY_SECONDS
    max_lifetime_seconds: Annotated[
        int, Field(ge=MIN_LIFETIME_SECONDS, le=MAX_LIFETIME_SECONDS)
    ] = DEFAULT_MAX_LIFETIME_SECONDS


def load_identity_settings(table: IdentityTable, data_dir: Path) -> IdentitySettings:
    """The table with its file resolved: ``{data_dir}`` in ``issuers_file`` is replaced by the
    data directory."""
    default_file = default_issuers_file(data_dir)
    issuers_file = default_file
    if table.issuers_file is not None:
        raw = table.issuers_file.replace("{data_dir}", Path(data_dir).as_posix())
        issuers_file = Path(raw).expanduser()
    return IdentitySettings(
        issuers_file=issuers_file,
        audience=table.audience,
        leeway_seconds=table.leeway_seconds,
        max_lifetime_seconds=table.max_lifetime_seconds,
        uses_default_issuers_file=issuers_file == default_file,
    )
