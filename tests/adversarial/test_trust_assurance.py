"""Assurance of the patient's identity: with the e-credential alone (no real-person check) a
patient still reads the lower levels of their own record, but its level-4 fields (name, ID
number, phone, diagnoses, findings) are FORBIDDEN_FIELD with reason ASSURANCE_TOO_LOW; a
real-person check (acr real_person) opens them. The event records the credential type and
the assurance."""

from __future__ import annotations

import pytest

from tests.support.adversarial import DIAGNOSIS, NAME, PHONE, VICTIM_ID, leaked
from tests.support.audit import logged

ME = """{ me { personId gender insuredRegion name idNumber phone
  cloudRecord { visits { nodes { visitType diagnosisText } } } } }"""
LEVEL_4 = {"name", "idNumber", "phone", "diagnosisText"}


async def ask(fed, app, ref: str, acr: str, cert_type: str = "01") -> dict:
    token = fed.token("patient", "370102", person=ref, acr=acr, cert_type=cert_type)
    async with fed.client(app, token) as c:
        response = await c.post("/graphql", json={"query": ME})
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("acr", ["credential", "real_name"])
async def test_below_a_real_person_check_level_4_fields_are_assurance_too_low(world, acr):
    fed, ref, app = world
    response = await ask(fed, app, ref, acr)
    for secret in (NAME, VICTIM_ID, PHONE, DIAGNOSIS):
        assert not leaked(response.text, secret), secret
    body = response.json()
    me = body["data"]["me"]
    # Lower levels of the own record still answer.
    assert me["personId"] == ref and me["gender"] and me["insuredRegion"] == "370102"
    assert all(v["visitType"] for v in me["cloudRecord"]["visits"]["nodes"])
    denied = {e["path"][-1] for e in body["errors"]}
    assert denied == LEVEL_4
    assert {(e["extensions"]["code"], e["extensions"]["reason"]) for e in body["errors"]} == {
        ("FORBIDDEN_FIELD", "ASSURANCE_TOO_LOW")
    }


async def test_a_real_person_check_reads_the_whole_own_record(world):
    fed, ref, app = world
    body = (await ask(fed, app, ref, "real_person", cert_type="03")).json()
    assert "errors" not in body, body
    assert body["data"]["me"]["name"] == NAME and body["data"]["me"]["idNumber"] == VICTIM_ID


async def test_the_event_records_the_credential_and_the_assurance(world):
    fed, ref, app = world
    await ask(fed, app, ref, "credential", cert_type="02")
    await ask(fed, app, ref, "real_person")
    events = [e for e in await logged(fed) if (e.get("principal") or {}).get("role") == "patient"]
    assert [(e["principal"]["certType"], e["principal"]["acr"]) for e in events[-2:]] == [
        ("02", "credential"),
        ("01", "real_person"),
    ]
    weak = events[-2]["persons"][0]
    assert {f["field"].split(".")[1] for f in weak["denied"]} == LEVEL_4
