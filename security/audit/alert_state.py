"""Warnings and alerts as the log records them: one state model, changed only by events.

Two kinds of warning share this model. An *access alert* (:mod:`security.audit.alerts`, and
a break-glass) is opened by the logged event that raised it: a request that broke the glass
opens its own (``breakGlassOpened`` in the request's event), an alert of a rule is an
``ALERT`` event of its own; its id is that event's log index. A *rule hit* of fund
supervision (:mod:`security.warnings`), found by the claims scan or by recordSettlement, is
opened by a ``SUPERVISION`` event of action ``OPEN`` that carries its facts (rule, grade,
claim, places, detail); its id is derived from (rule, claim), so a hit two events carry is
opened once, by the first (:class:`~security.audit.leaves.InsertOnce`).
Each has a grade (1 notice … 4 blocking), an owner and a state:

    OPEN -> ACKNOWLEDGED -> RESOLVED | FALSE_POSITIVE      (OPEN may be closed directly)

and its state and owner change only through ``ALERT`` change events (``handleAlert``,
``closeAlert``, ``handleWarning``), each naming what it changes, the action, the state before
and after, the owner after, who changed it and the note (a field ciphertext, never plain).

The rows are changed by the log's ``derive`` hook in the change event's own transaction, so
``medfed audit verify`` holds every state, owner and note to the event that set it
(``state_idx``). :data:`TRANSITIONS` says which state an action may lead to from which; a new
state is a new entry there, and a new column set by a change a new entry in
:data:`STATE_COLUMNS`. Change events logged before owners and the four states (``CLOSED``)
are read as ``RESOLVED``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from security.audit.events import EVENT_VERSION, Kind, now_iso, principal_of, supervision_event
from security.audit.leaves import InsertOnce, Update
from security.audit.models import AuditAlert
from security.errors import MedfedError
from security.warnings import CHANGES, WARNINGS, opened_row

ALERTS = AuditAlert.__table__
KIND = "ALERT"
OPEN_PHASE, CHANGE_PHASE = "OPEN", "CHANGE"
OPEN, ACKNOWLEDGED, RESOLVED, FALSE_POSITIVE = "OPEN", "ACKNOWLEDGED", "RESOLVED", "FALSE_POSITIVE"
STATES = (OPEN, ACKNOWLEDGED, RESOLVED, FALSE_POSITIVE)
CLOSED_STATES = frozenset({RESOLVED, FALSE_POSITIVE})
LEGACY_CLOSED = "CLOSED"  # closeAlert's only state before the four (read as RESOLVED)
# Which states a change may lead to from each state (a closed warning stays closed).
TRANSITIONS: dict[str, frozenset[str]] = {
    OPEN: frozenset({ACKNOWLEDGED, RESOLVED, FALSE_POSITIVE}),
    ACKNOWLEDGED: frozenset({RESOLVED, FALSE_POSITIVE}),
    RESOLVED: frozenset(),
    FALSE_POSITIVE: frozenset(),
}
# What each action does to the state (None: keeps it; ASSIGN only changes the owner).
ACTIONS: dict[str, str | None] = {
    "ASSIGN": None,
    "ACKNOWLEDGE": ACKNOWLEDGED,
    "RESOLVE": RESOLVED,
    "FALSE_POSITIVE": FALSE_POSITIVE,
}
# The columns a change sets (the rest of a row is fixed when the warning opens).
STATE_COLUMNS = ("state", "state_idx", "owner", "changed_by", "changed_org", "changed_at", "note")
BY_ID = Update(ALERTS, ("id",))
WARNING_BY_ID = Update(WARNINGS, ("warning_id",))
# A rule hit is opened once: two events may carry it (two scans at once), the first stands.
WARNING_OPENED = InsertOnce(WARNINGS)
OPEN_WARNINGS = "OPEN"  # the supervision action of an event that opens rule hits
# The tables whose rows carry STATE_COLUMNS, with the column naming a row in change events.
STATEFUL = ((ALERTS, "id"), (WARNINGS, "warning_id"))
BREAK_GLASS = "BREAK_GLASS"
# The grade of each access alert (1 notice, 2 attention, 3 serious; no access alert blocks:
# the access it reports has happened). A rule alert's event carries its grade; a
# break-glass is graded here.
ALERT_GRADES = {BREAK_GLASS: 3, "VOLUME_SPIKE": 3, "PROBING": 3, "OFF_HOURS": 2}
OWNER_RULE = "1-128 of A-Z a-z 0-9 . _ @ : | -"
ALLOWED_OWNER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@:|-")


class TransitionError(MedfedError, ValueError):
    """A change the state model does not allow; the message says why, in one line."""


def owner_problem(owner: str) -> str | None:
    """Why ``owner`` is not an owner's name, or None."""
    ok = 1 <= len(owner) <= 128 and set(owner) <= ALLOWED_OWNER
    return None if ok else f"must be {OWNER_RULE}"


def next_state(state: str, action: str, owner: str | None, new_owner: str | None) -> str:
    """The state ``action`` leads to from ``state``, or TransitionError. ASSIGN keeps the
    state and needs an owner; nothing changes a closed warning."""
    if action not in ACTIONS:
        raise TransitionError(f"unknown action {action}")
    if state in CLOSED_STATES:
        raise TransitionError(f"it is {state}; a closed warning cannot change")
    target = ACTIONS[action]
    if target is None:
        if not new_owner:
            raise TransitionError("ASSIGN needs an owner")
        if new_owner == owner:
            raise TransitionError(f"it is already assigned to {owner}")
        return state
    if target not in TRANSITIONS.get(state, frozenset()):
        raise TransitionError(f"it is {state}; it cannot become {target}")
    return target


def grade_of(rule: str) -> int:
    return ALERT_GRADES.get(rule, 2)


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
            "grade": grade_of(alert["rule"]),
            "event": alert["idx"],
            "at": alert["at"].isoformat(),
            "sub": alert.get("sub"),
            "org": alert.get("org"),
            "person": alert.get("person"),
            "detail": alert["detail"],
        },
    }


def warnings_opened_event(
    warnings: list[dict[str, Any]], *, principal: Any, purpose: str, request_id: str
) -> dict[str, Any]:
    """The event that opens rule hits (:func:`security.warnings.facts_of` each): its
    derive hook stores them, so their facts are the log's."""
    return supervision_event(
        principal=principal,
        purpose=purpose,
        action=OPEN_WARNINGS,
        supervision={"warnings": warnings},
        request_id=request_id,
    )


def opened_warnings(idx: int, event: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """The rule hits ``event`` opens (none unless it is a supervision ``OPEN``)."""
    run = event.get("supervision")
    if event.get("kind") != Kind.SUPERVISION or not isinstance(run, Mapping):
        return []
    if run.get("action") != OPEN_WARNINGS:
        return []
    at = datetime.fromisoformat(event["time"])
    return [(WARNING_OPENED, opened_row(idx, at, facts)) for facts in run.get("warnings") or []]


def change_event(
    *,
    target: str,
    target_id: int | str,
    action: str,
    from_state: str,
    state: str,
    owner: str | None,
    principal: Any,
    purpose: str,
    note: bytes | None,
    holders: Iterable[str],
    request_id: str,
) -> dict[str, Any]:
    """The event that changes ``target`` ("alert" or "warning") ``target_id`` by ``action``
    from ``from_state`` to ``state`` with ``owner`` after it (the caller checked it may, with
    :func:`next_state`)."""
    assert target in ("alert", "warning")
    return {
        "v": EVENT_VERSION,
        "kind": KIND,
        "phase": CHANGE_PHASE,
        "time": now_iso(),
        "requestId": request_id,
        "principal": principal_of(principal),
        "purpose": purpose,
        "breakGlass": False,
        "persons": [],
        "holders": list(dict.fromkeys(holders)),
        "outcome": "OK",
        "errors": [],
        target: {
            "id": target_id,
            "action": action,
            "from": from_state,
            "state": state,
            "owner": owner,
            "note": _b64(note),
        },
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
        "owner": None,
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
        if event.get("phase") == OPEN_PHASE and isinstance(alert, Mapping):
            return [
                (
                    ALERTS,
                    _opened(
                        idx,
                        int(alert["event"]),
                        datetime.fromisoformat(alert["at"]),
                        rule=alert["rule"],
                        grade=int(alert.get("grade") or grade_of(alert["rule"])),
                        sub=alert.get("sub"),
                        org=alert.get("org"),
                        person=alert.get("person"),
                        detail=alert["detail"],
                    ),
                )
            ]
        if event.get("phase") == CHANGE_PHASE:
            return _changed(idx, at, event)
        return []
    if event.get("kind") == Kind.SUPERVISION:
        return opened_warnings(idx, event)
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
                grade=grade_of(BREAK_GLASS),
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


def _changed(idx: int, at: datetime, event: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """The rows a change event sets: the alert's or the warning's state columns, and for a
    warning one row of its history (``supervision_warning_changes``)."""
    principal = event.get("principal") or {}
    alert, warning = event.get("alert"), event.get("warning")
    change = alert if isinstance(alert, Mapping) else warning
    if not isinstance(change, Mapping):
        return []
    state = change["state"]
    state = RESOLVED if state == LEGACY_CLOSED else state
    note = _unb64(change.get("note"))
    columns = {
        "state": state,
        "state_idx": idx,
        "owner": change.get("owner"),
        "changed_by": principal.get("sub"),
        "changed_org": principal.get("org"),
        "changed_at": at,
        "note": note,
    }
    if change is alert:
        return [(BY_ID, {"id": int(change["id"]), **columns})]
    wid = str(change["id"])
    history = {
        "idx": idx,
        "warning_id": wid,
        "at": at,
        "by": f"{principal.get('issuer')}|{principal.get('sub')}|{principal.get('org')}",
        "action": change["action"],
        "from_state": change["from"],
        "to_state": state,
        "owner": change.get("owner"),
        "note": note,
    }
    return [(WARNING_BY_ID, {"warning_id": wid, **columns}), (CHANGES, history)]
