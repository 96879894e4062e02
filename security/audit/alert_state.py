"""Alerts as the log records them: opened by an event, changed only by events.

An alert is *opened* by the logged event that raised it: a request that broke the glass
opens its own (``breakGlassOpened`` in the request's event, so the alert exists exactly when
the access is on record); an alert of a rule (:mod:`security.audit.alerts`) is an ``ALERT``
event of its own, logged once the rule fired. Either way the alert's id is that event's log
index. Its state changes only through ``ALERT`` change events (``closeAlert``), each naming
the alert, the new state, who changed it and the note (a field ciphertext, never plain).

``audit_alerts`` is derived from those events in the events' own transactions (the log's
``derive`` hook), so ``medfed audit verify`` can recompute every row and every state. The
state model is small on purpose: :data:`TRANSITIONS` says which change is allowed from which
state, and a new state (or column) is a new entry there and in :data:`STATE_COLUMNS`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from security.audit.events import EVENT_VERSION, now_iso, principal_of
from security.audit.leaves import Update
from security.audit.models import AuditAlert

ALERTS = AuditAlert.__table__
KIND = "ALERT"
OPEN_PHASE, CHANGE_PHASE = "OPEN", "CHANGE"
OPEN, CLOSED = "OPEN", "CLOSED"
# Which states a change may lead to from each state.
TRANSITIONS: dict[str, frozenset[str]] = {OPEN: frozenset({CLOSED}), CLOSED: frozenset()}
# The columns a change sets (the rest of a row is fixed when the alert opens).
STATE_COLUMNS = ("state", "state_idx", "changed_by", "changed_org", "changed_at", "note")
BY_ID = Update(ALERTS, ("id",))
BREAK_GLASS = "BREAK_GLASS"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes | None:
    return base64.b64decode(text, validate=True) if isinstance(text, str) else None


def opened_event(alert: Mapping[str, Any], holders: Iterable[str]) -> dict[str, Any]:
    """The event that opens a rule's alert (``alert`` as the rule fired it); ``holders`` are
    the parties of the event that fired it, so the same auditors see both."""
    return {
        "v": EVENT_VERSION,
        "kind": KIND,
        "phase": OPEN_PHASE,
        "time": now_iso(),
        "principal": None,
        "purpose": None,
        "breakGlass": False,
        "persons": [],
        "holders": list(dict.fromkeys(holders)),
        "outcome": "OK",
        "errors": [],
        "alert": {
            "rule": alert["rule"],
            "event": alert["idx"],
            "at": alert["at"].isoformat(),
            "sub": alert.get("sub"),
            "org": alert.get("org"),
            "person": alert.get("person"),
            "detail": alert["detail"],
        },
    }


def change_event(
    *,
    alert_id: int,
    state: str,
    principal: Any,
    note: bytes | None,
    holders: Iterable[str],
    request_id: str,
) -> dict[str, Any]:
    """The event that moves alert ``alert_id`` to ``state`` (the caller checked it may)."""
    return {
        "v": EVENT_VERSION,
        "kind": KIND,
        "phase": CHANGE_PHASE,
        "time": now_iso(),
        "requestId": request_id,
        "principal": principal_of(principal),
        "purpose": "AUDIT",
        "breakGlass": False,
        "persons": [],
        "holders": list(dict.fromkeys(holders)),
        "outcome": "OK",
        "errors": [],
        "alert": {"id": alert_id, "state": state, "note": _b64(note)},
    }


def _opened(idx: int, fired_by: int, at: datetime, **fixed: Any) -> dict[str, Any]:
    return {
        "id": idx,
        "idx": fired_by,
        "at": at,
        "request_id": None,
        "reason_code": None,
        "reason_text": None,
        **fixed,
        "state": OPEN,
        "state_idx": idx,
        "changed_by": None,
        "changed_org": None,
        "changed_at": None,
        "note": None,
    }


def derived_rows(idx: int, event: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """The log's derive hook for ``audit_alerts``: an alert opened or changed by ``event``."""
    if not isinstance(event.get("time"), str):
        return []
    at = datetime.fromisoformat(event["time"])
    if event.get("kind") == KIND:
        alert = event.get("alert")
        if not isinstance(alert, Mapping):
            return []
        if event.get("phase") == OPEN_PHASE:
            return [
                (
                    ALERTS,
                    _opened(
                        idx,
                        int(alert["event"]),
                        datetime.fromisoformat(alert["at"]),
                        rule=alert["rule"],
                        sub=alert.get("sub"),
                        org=alert.get("org"),
                        person=alert.get("person"),
                        detail=alert["detail"],
                    ),
                )
            ]
        if event.get("phase") == CHANGE_PHASE:
            principal = event.get("principal") or {}
            return [
                (
                    BY_ID,
                    {
                        "id": int(alert["id"]),
                        "state": alert["state"],
                        "state_idx": idx,
                        "changed_by": principal.get("sub"),
                        "changed_org": principal.get("org"),
                        "changed_at": at,
                        "note": _unb64(alert.get("note")),
                    },
                )
            ]
        return []
    opened = event.get("breakGlassOpened")
    if not isinstance(opened, Mapping) or not opened.get("persons"):
        return []
    principal = event.get("principal") or {}
    persons = list(opened["persons"])
    reason = opened.get("reason") or {}
    sub, org = principal.get("sub"), principal.get("org")
    return [
        (
            ALERTS,
            _opened(
                idx,
                idx,
                at,
                rule=BREAK_GLASS,
                sub=sub,
                org=org,
                person=persons[0] if len(persons) == 1 else None,
                detail=f"emergency access by {sub} ({org}) to {len(persons)} person(s), "
                f"reason {reason.get('code')}",
                request_id=event.get("requestId"),
                reason_code=reason.get("code"),
                reason_text=_unb64(reason.get("text")),
            ),
        )
    ]
