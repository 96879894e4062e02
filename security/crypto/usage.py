"""How many encryptions each data key has made, so none comes near the AES-GCM limit.

GCM with random 96-bit nonces stays within NIST SP 800-38D's collision bound (2^-32) for at
most 2^32 encryptions under one key. Every process counts its own encryptions and persists
them in blocks: before its next :data:`BLOCK` encryptions under a key it adds the block to
``keys/usage.json`` (a locked read-modify-write, replaced atomically), then counts down in
memory. The stored count is therefore never below the true one (a process that stops early
only over-counts the rest of its block), and the cost is one small file write per block.

From :data:`WARN_AT` (2^30, a quarter of the limit) a key is reported for rotation
(``medfed keys status``, the gateway's log); at :data:`LIMIT` encryption under it is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from security.crypto.key_files import locked, replace_file
from security.errors import MedfedError

LIMIT = 2**32
WARN_AT = 2**30
BLOCK = 4096
USAGE_FILE = "usage.json"
FORMAT = "medfed-key-usage/1"


class UsageLedger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def counts(self) -> dict[str, int]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # Unreadable counts must not pass for small ones: the caller treats this as full.
            raise UsageError(f"the key usage file {self.path} is damaged") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise UsageError(f"{self.path} is not a {FORMAT} file")
        counts = raw.get("encryptions", {})
        if not isinstance(counts, dict) or not all(
            isinstance(v, int) and v >= 0 for v in counts.values()
        ):
            raise UsageError(f"the key usage file {self.path} is damaged")
        return counts

    def reserve(self, key_id: str, n: int = BLOCK) -> int:
        """Add ``n`` encryptions to ``key_id``'s count; return the count before them."""
        with locked(self.path.with_name("usage.lock")):
            counts = self.counts()
            before = counts.get(key_id, 0)
            counts[key_id] = before + n
            payload = {"format": FORMAT, "encryptions": counts}
            replace_file(self.path, json.dumps(payload, indent=2).encode("utf-8"))
        return before


class UsageError(MedfedError):
    """The usage file cannot be trusted; encryption is refused until it is repaired."""


def warning_for(key_id: str, count: int) -> str | None:
    if count >= WARN_AT:
        return (
            f"data key {key_id} has made {count:,} encryptions (AES-GCM limit {LIMIT:,}): "
            f"run `medfed keys rotate` and `medfed keys reencrypt`"
        )
    return None
