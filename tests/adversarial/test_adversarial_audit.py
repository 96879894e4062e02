"""The adversarial requests of ``tests/adversarial/test_adversarial.py`` against the audit log:
each executed read leaves exactly one event, what the log says was denied is what the caller
was told was denied, and nothing of the victim is logged as read."""

from __future__ import annotations

import pytest

from tests.support.adversarial import ATTACKERS, ATTACKS, READ, emergency_patients, post
from tests.support.audit import logged, verify
from tests.support.federation import make_id_number

DENIALS = ("FORBIDDEN_FIELD", "FORBIDDEN")


def _denied_in(body: dict) -> set[str]:
    return {
        f"{e['extensions']['type']}.{e['extensions']['field']}"
        for e in body.get("errors") or ()
        if e["extensions"].get("code") == "FORBIDDEN_FIELD"
    }


@pytest.mark.parametrize("role,org,purposes", ATTACKERS, ids=[a[0] for a in ATTACKERS])
async def test_every_attack_leaves_exactly_one_event_that_names_its_denials(
    world, role, org, purposes
):
    fed, ref, app = world
    person = fed.indexer.person_ref(make_id_number(seq=1)) if role == "patient" else None
    seen = 0
    for name, (query, extra) in ATTACKS.items():
        response = await post(
            fed,
            app,
            role,
            org,
            purposes,
            query,
            {"id": ref, "n": make_id_number("370102", seq=777), **extra},
            person=person,
            operation="Attack" if name == "two operations" else None,
        )
        events = await logged(fed)
        new, seen = events[seen:], len(events)
        # A rule's alert (the prober's denials) is an event of its own, logged after the
        # request's by the alert task: not the request's.
        new = [e for e in new if e.get("kind") != "ALERT"]
        # Every attack is a well-formed request: it must execute and be answered (a 400 here
        # would mean the attack stopped testing anything).
        assert response.status_code == 200, (role, name, response.status_code, response.text)
        body = response.json()
        # Every executed read of personal data leaves exactly one event, whatever it found.
        assert len(new) == 1, f"{role} via {name}: {len(new)} events"
        [event] = new
        assert event["kind"] == "QUERY"
        assert event["principal"]["role"] == role and event["principal"]["org"] == org
        refused = any(e["extensions"].get("code") in DENIALS for e in body.get("errors") or ())
        victim = [p for p in event["persons"] if p["personId"] == ref]
        logged_denials = {f["field"] for p in event["persons"] for f in p["denied"]}
        if refused or victim:
            assert event["outcome"] in ("DENIED", "PARTIAL"), (role, name, event["outcome"])
        else:
            assert event["outcome"] == "OK", (role, name, event)
        # What the caller was told was denied is what the log says was denied.
        assert _denied_in(body) <= logged_denials, (role, name)
        # Nothing identifying or clinical of the victim was read or masked without a relation.
        assert not [f for p in victim for kind in ("read", "masked") for f in p[kind]], (
            role,
            name,
            victim,
        )
    assert (await verify(fed, None)).ok


async def test_a_list_that_leaves_out_the_victims_rows_names_the_victim_in_the_log(world):
    """A list the caller may not see is answered empty; the log still says whose rows were
    kept back, so probing by list shows to the auditors (the PROBING alert counts these)."""
    fed, ref, app = world
    query = "query($id: ID!) { testResults(personId: $id) { nodes { resultId findings } } }"
    stranger = await post(
        fed, app, "clinician", "H33010600001", None, query, {"id": ref}, purpose="TREATMENT"
    )
    assert stranger.json()["data"]["testResults"]["nodes"] == []
    treating = await post(
        fed, app, "clinician", "H37010200003", None, query, {"id": ref}, purpose="TREATMENT"
    )
    assert treating.json()["data"]["testResults"]["nodes"]  # positive control: rows exist
    refused, answered = await logged(fed)
    [entry] = refused["persons"]
    assert entry["personId"] == ref and entry["relation"] == "NONE"
    assert [f["field"] for f in entry["denied"]] == ["TestResult.resultId"]
    assert entry["denied"][0]["reason"] and refused["outcome"] == "DENIED"
    [entry] = answered["persons"]
    assert entry["denied"] == [] and answered["outcome"] == "OK"
    assert {"TestResult.resultId", "TestResult.findings"} <= {f["field"] for f in entry["read"]}


async def test_legitimate_reads_are_logged_as_reads(world):
    fed, ref, app = world
    await post(fed, app, "patient", "370102", None, READ, {"id": ref}, person=ref)
    await post(fed, app, "clinician", "H37010200003", None, READ, {"id": ref}, purpose="TREATMENT")
    patient, clinician = await logged(fed)
    for event in (patient, clinician):
        [entry] = event["persons"]
        assert entry["personId"] == ref and event["outcome"] in ("OK", "PARTIAL")
        assert {"Visit.diagnosisText", "TestResult.findings"} <= {f["field"] for f in entry["read"]}
    assert patient["purpose"] == "PATIENT_ACCESS" and clinician["purpose"] == "TREATMENT"


async def test_break_glass_requests_are_flagged_and_the_refused_one_is_a_denial(world):
    fed, ref, app = world
    others = await emergency_patients(fed)
    for target in (ref, ref, *others):
        await post(
            fed,
            app,
            "clinician",
            "H33010600001",
            ["TREATMENT", "EMERGENCY"],
            READ,
            {"id": target},
            purpose="EMERGENCY",
        )
    events = await logged(fed)
    assert len(events) == 7
    assert [e["breakGlass"] for e in events] == [True] * 6 + [False]
    refused = events[-1]
    assert refused["persons"][0]["personId"] == others[-1]
    assert refused["breakGlassRefused"] == [others[-1]] and refused["outcome"] == "DENIED"
    # The name is denied, and the visits are kept back (left out of the list, logged as such).
    assert {f["field"] for f in refused["persons"][0]["denied"]} == {"Person.name", "Visit.visitId"}
    assert all(e["breakGlassRefused"] == [] for e in events[:-1])
    assert all(e["purpose"] == "EMERGENCY" for e in events)
