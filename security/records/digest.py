"""The canonical form of an original record, and its digest.

A record is a flat mapping of column name to plain value (encrypted cells opened first, so a
key rotation does not change the record); its canonical form is the line
``medfed/record/v1``, the line ``<kind>`` (the source table), the salt's 16 bytes in hex and a
newline, then JSON with keys sorted, no spaces, UTF-8, of the record, where times are
``YYYY-MM-DDTHH:MM:SS`` (microseconds when present), dates ``YYYY-MM-DD``, booleans and
numbers as JSON has them. The digest is SHA-256 of that (SM3 in the national profile), hex.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import hashes

TAG = "medfed/record/v1"
HASHES = {"standard": hashes.SHA256, "national": hashes.SM3}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("a record's canonical form holds plain values, not bytes")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def canonical(kind: str, record: dict[str, Any], salt: str) -> bytes:
    body = json.dumps(
        {k: _plain(v) for k, v in record.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return f"{TAG}\n{kind}\n{salt}\n{body}".encode()


def digest(kind: str, record: dict[str, Any], salt: str, profile: str = "standard") -> str:
    h = hashes.Hash(HASHES.get(profile, hashes.SHA256)())
    h.update(canonical(kind, record, salt))
    return h.finalize().hex()
