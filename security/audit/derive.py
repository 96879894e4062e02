"""The log's derive hook: every derived row of an event, written in the event's own
transaction (``audit_index`` for the auditors' filters, ``audit_writes`` for the writes the
log names). Importable by name, so the SQLite writer process runs the same function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from security.audit import index, writes


def rows(idx: int, event: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    return [*index.derived_rows(idx, event), *writes.derived_rows(idx, event)]
