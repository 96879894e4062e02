"""The one state model of access alerts and supervision warnings (security.audit.alert_state):
which action leads where, what a change event derives, and that the GraphQL enums name the
same states and actions."""

from __future__ import annotations

from datetime import datetime

import pytest

from schema.types.handling import WarningAction, WarningState
from security.audit import alert_state as model
from security.warnings import CHANGES, WARNINGS


def test_the_graphql_enums_are_the_models_states_and_actions():
    assert [s.value for s in WarningState] == list(model.STATES)
    assert {a.value for a in WarningAction} == set(model.ACTIONS)


@pytest.mark.parametrize(
    "state,action,target",
    [
        ("OPEN", "ACKNOWLEDGE", "ACKNOWLEDGED"),
        ("OPEN", "RESOLVE", "RESOLVED"),
        ("OPEN", "FALSE_POSITIVE", "FALSE_POSITIVE"),
        ("ACKNOWLEDGED", "RESOLVE", "RESOLVED"),
        ("ACKNOWLEDGED", "FALSE_POSITIVE", "FALSE_POSITIVE"),
        ("OPEN", "ASSIGN", "OPEN"),
        ("ACKNOWLEDGED", "ASSIGN", "ACKNOWLEDGED"),
    ],
)
def test_allowed_changes(state, action, target):
    assert model.next_state(state, action, None, "inspector-7") == target


@pytest.mark.parametrize(
    "state,action,owner,new_owner,why",
    [
        ("ACKNOWLEDGED", "ACKNOWLEDGE", None, None, "cannot become ACKNOWLEDGED"),
        ("RESOLVED", "FALSE_POSITIVE", None, None, "closed"),
        ("FALSE_POSITIVE", "RESOLVE", None, None, "closed"),
        ("RESOLVED", "ASSIGN", None, "x", "closed"),
        ("OPEN", "ASSIGN", None, None, "needs an owner"),
        ("OPEN", "ASSIGN", "x", "x", "already assigned"),
        ("OPEN", "DELETE", None, None, "unknown action"),
    ],
)
def test_refused_changes(state, action, owner, new_owner, why):
    with pytest.raises(model.TransitionError, match=why):
        model.next_state(state, action, owner, new_owner)


def test_owner_names():
    assert model.owner_problem("inspector-7@330000") is None
    assert model.owner_problem("x" * 128) is None
    assert model.owner_problem("x" * 129) is not None
    assert model.owner_problem("") is not None
    assert model.owner_problem("a b") is not None


def _change(target: str, target_id, state: str, **extra):
    class P:
        sub, org, issuer, role = "officer", "330000", "https://issuer", "auditor"

    event = model.change_event(
        target=target,
        target_id=target_id,
        action=extra.get("action", "RESOLVE"),
        from_state="OPEN",
        state=state,
        owner=extra.get("owner"),
        principal=P(),
        purpose="AUDIT",
        note=b"sealed",
        holders=["330000"],
        request_id="r1",
    )
    return model.derived_rows(42, event)


def test_an_alert_change_sets_the_alerts_state_columns():
    [(target, row)] = _change("alert", 7, "RESOLVED", owner="o")
    assert target is model.BY_ID
    assert {k: row[k] for k in ("id", "state", "state_idx", "owner", "changed_by", "note")} == {
        "id": 7,
        "state": "RESOLVED",
        "state_idx": 42,
        "owner": "o",
        "changed_by": "officer",
        "note": b"sealed",
    }
    assert set(row) == {"id", *model.STATE_COLUMNS}


def test_a_warning_change_sets_its_state_and_adds_to_its_history():
    [(target, row), (history, entry)] = _change("warning", "w" * 32, "FALSE_POSITIVE")
    assert target.table is WARNINGS and history is CHANGES
    assert row["warning_id"] == "w" * 32 and row["state"] == "FALSE_POSITIVE"
    assert set(row) == {"warning_id", *model.STATE_COLUMNS}
    assert entry["idx"] == 42 and entry["from_state"] == "OPEN"
    assert entry["by"] == "https://issuer|officer|330000" and entry["note"] == b"sealed"


def test_a_change_logged_before_the_four_states_reads_as_resolved():
    old = {
        "v": 1,
        "kind": "ALERT",
        "phase": "CHANGE",
        "time": "2026-11-30T10:00:00+00:00",
        "principal": {"sub": "officer", "org": "330000"},
        "alert": {"id": 3, "state": "CLOSED", "note": None},
    }
    [(_, row)] = model.derived_rows(9, old)
    assert row["state"] == "RESOLVED" and row["owner"] is None


def test_alerts_open_with_their_grade():
    opened = model.opened_event(
        {"rule": "OFF_HOURS", "idx": 5, "at": datetime.now(), "detail": "d"},
        ["330000"],
    )
    [(_, row)] = model.derived_rows(6, opened)
    assert (row["grade"], row["state"], row["owner"]) == (2, "OPEN", None)
