"""The log's derive hook: every derived row of an event, written in the event's own
transaction (``audit_index`` for the auditors' filters, ``audit_writes`` for the writes the
log names, ``audit_alerts`` for the alerts and their states, ``supervision_warning_changes``
for the history of the supervision warnings, whose states it sets too). Importable by name, so the
SQLite writer process runs the same function; ``medfed audit verify`` runs it again over the
verified leaves and compares (:mod:`security.audit.derived_check`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from security.audit import alert_state, index, writes

# Each derived table with the columns that identify a row among its leaf's rows (its key
# in verify's report) and the surrogate columns verify ignores.
TABLES = (
    (index.INDEX, ("idx", "person"), ("id",)),
    (writes.WRITES, ("idx", "intent"), ()),
    (alert_state.ALERTS, ("id",), ()),
    (alert_state.CHANGES, ("idx",), ()),
)


def rows(idx: int, event: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    if not isinstance(event.get("time"), str):
        return []  # not a gateway event (a bare test or bench append): nothing is derived
    return [
        *index.derived_rows(idx, event),
        *writes.derived_rows(idx, event),
        *alert_state.derived_rows(idx, event),
    ]
