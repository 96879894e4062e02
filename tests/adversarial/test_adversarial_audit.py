"""The adversarial requests of ``tests/adversarial/test_adversarial.py`` against the audit log: each
request leaves exactly the events it should, and what the log says was denied is what the
caller was told was denied."""

from __future__ import annotations

import pytest

from tests.support.adversarial import ATTACKERS, ATTACKS, READ, emergency_patients, post

# The adversarial module's own fixture: the same victim and the same app.
from tests.support.audit import logged, verify
from tests.support.federation import make_id_number

DENIALS = ("FORBIDDEN_FIELD", "FORBIDDEN")
DOOR = ("UNAUTHENTICATED", "PURPOSE_REQUIRED", "PURPOSE_NOT_ALLOWED", "PURPOSE_UNKNOWN")


def _denied_in(body: dict) -> set[str]:
    return {
        f"{e['extensions']['type']}.{e['extensions']['field']}"
        for e in body.get("errors") or ()
        if e["extensions"].get("code") == "FORBIDDEN_FIELD"
    }


@pytest.mark.parametrize("role,org,purposes", ATTACKERS, ids=[a[0] for a in ATTACKERS])
async def test_every_attack_leaves_at_most_one_event_that_names_its_denials(
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
        if response.status_code != 200:
            codes = (
                [e.get("extensions", {}).get("code") for e in response.json().get("errors", [])]
                if response.content
                else []
            )
            if codes and codes[0] in DOOR:  # refused at the door: one authentication event
                assert [(e["kind"], e["errors"]) for e in new] == [
                    ("AUTHENTICATION", [codes[0]])
                ], (role, name)
            else:  # refused before execution (malformed request): nothing was read
                assert new == [], f"{role} via {name}: a refused request logged {new}"
            continue
        body = response.json()
        refused = any(e["extensions"].get("code") in DENIALS for e in body.get("errors") or ())
        assert len(new) == (1 if refused else len(new)) and len(new) <= 1, (role, name, new)
        if not new:
            continue
        [event] = new
        assert event["principal"]["role"] == role and event["principal"]["org"] == org
        assert event["outcome"] in ("DENIED", "PARTIAL", "OK")
        if refused:
            assert event["outcome"] in ("DENIED", "PARTIAL"), (role, name)
        victim = [p for p in event["persons"] if p["personId"] == ref]
        logged_denials = {f["field"] for p in victim for f in p["denied"]}
        assert _denied_in(body) <= logged_denials | {
            f["field"] for p in event["persons"] for f in p["denied"]
        }, (role, name)
        # Nothing identifying or clinical of the victim was read without a relation.
        assert not [f for p in victim for f in p["read"] if f["level"] >= 3], (role, name)
    assert (await verify(fed, None)).ok


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
    assert {f["field"] for f in refused["persons"][0]["denied"]} == {"Person.name"}
    assert all(e["breakGlassRefused"] == [] for e in events[:-1])
    assert all(e["purpose"] == "EMERGENCY" for e in events)
