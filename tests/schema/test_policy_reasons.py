"""A rule's ``why`` is what the caller is told and what the audit log keeps: the policy is
replaced by a synthetic one whose reasons appear nowhere else, so only the rule can be their
source."""

from __future__ import annotations

import dataclasses

from gateway.app import build_services
from security.policy.rules import parse
from tests.support.audit import logged
from tests.support.federation import Federation, gql, make_id_number

WHY_NAME = "synthetic-why-7f3a: names are closed to clinicians here"
WHY_FLOOR = "synthetic-floor-91c2: level 4 needs a strong relation"
POLICY = {
    "floor": {
        "level": 4,
        "classes": [],
        "relations": ["SELF", "TREATING", "CONSENTED", "BREAK_GLASS"],
        "why": WHY_FLOOR,
    },
    "rules": [
        {
            "roles": ["clinician"],
            "purposes": "*",
            "relations": "*",
            "fields": ["Person.name"],
            "decision": "DENY",
            "why": WHY_NAME,
        },
        {
            "roles": ["clinician"],
            "purposes": "*",
            "relations": "*",
            "classes": "*",
            "decision": "ALLOW",
            "why": "synthetic allow",
        },
        {
            # Who reads the audit log is this policy's to say too (security.policy.audit_access).
            "roles": ["auditor"],
            "purposes": ["AUDIT"],
            "relations": "*",
            "classes": ["audit"],
            "decision": "ALLOW",
            "why": "synthetic: auditors read the audit log",
        },
    ],
}
QUERY = """query($id: ID!) { person(personId: $id) { name gender
    cloudRecord { visits { nodes { visitId diagnosisText } } } } }"""


async def test_a_rules_why_is_the_forbidden_field_reason_and_the_audit_events_reason(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(seq=41), "王五")
    await fed.add_visits(ref, 1)
    services = build_services(fed.settings)
    services = dataclasses.replace(services, policy=parse(POLICY), _decider=None)
    app = fed.app(services)
    # A clinician of an institution that never treated the person: REGION/NONE rows, so the
    # floor applies to level-4 fields while the synthetic rule allows everything else.
    async with fed.client(app, fed.token("clinician", "H22010200005"), "TREATMENT") as c:
        body = await gql(c, QUERY, {"id": ref})
    person = body["data"]["person"]
    assert person["name"] is None
    assert person["gender"] is not None  # positive control: the allowing rule answers
    visits = person["cloudRecord"]["visits"]["nodes"]
    assert visits and all(v["visitId"] and v["diagnosisText"] is None for v in visits)
    reasons = {
        (e["extensions"]["type"], e["extensions"]["field"]): e["extensions"]["reason"]
        for e in body["errors"]
    }
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN_FIELD"}
    assert reasons == {
        ("Person", "name"): WHY_NAME,
        ("Visit", "diagnosisText"): f"{WHY_FLOOR} (no mask for this field)",
    }
    [event] = await logged(fed)
    [entry] = event["persons"]
    assert entry["personId"] == ref
    assert {f["field"]: f["reason"] for f in entry["denied"]} == {
        "Person.name": WHY_NAME,
        "Visit.diagnosisText": f"{WHY_FLOOR} (no mask for this field)",
    }
    assert "reason" not in str(entry["read"])  # reads carry no reason
    # The auditor reads the same reasons through the API.
    async with fed.client(app, fed.token("auditor", "330000"), "AUDIT") as c:
        audit = await gql(
            c, "{ auditEvents { nodes { persons { denied { field reason } } } } }", {}
        )
    [node] = audit["data"]["auditEvents"]["nodes"]
    assert {f["field"]: f["reason"] for f in node["persons"][0]["denied"]} == {
        "Person.name": WHY_NAME,
        "Visit.diagnosisText": f"{WHY_FLOOR} (no mask for this field)",
    }
