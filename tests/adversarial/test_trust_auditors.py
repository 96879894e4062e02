"""Auditor scope: an auditor sees the events in which its organisation is the actor or a data
holder, a regional auditor those with a party in its region, a national auditor all of them
([audit_scope] of the policy). Checked on auditEvents, auditAlerts, auditProof and the HTTP
routes /audit/proof and /audit/export, each with its positive control."""

from __future__ import annotations

import orjson
import pytest

from tests.support.adversarial import READ
from tests.support.federation import RECENT_VISIT, gql, make_id_number

JINAN, HANGZHOU = "H37010200003", "H33010600001"
EVENTS = "{ auditEvents(first: 100) { nodes { index requestId principal { org } } } }"
ALERTS = "{ auditAlerts(first: 100) { nodes { index rule org } } }"


async def _read(fed, app, org: str, ref: str, purpose: str = "TREATMENT", **headers) -> str:
    token = fed.token("clinician", org, purposes=["TREATMENT", "EMERGENCY"])
    async with fed.client(app, token, purpose) as c:
        response = await c.post(
            "/graphql", json={"query": READ, "variables": {"id": ref}}, headers=headers
        )
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


@pytest.fixture
async def traffic(world):
    """Jinan reads its patient (the victim); Hangzhou reads its own patient; a Hangzhou
    clinician breaks the glass on a Shandong patient (an alert)."""
    fed, ref, app = world
    local = await fed.add_person(make_id_number("330106", seq=41), "杭州病人")
    await fed.add_visits(local, 1, begin=RECENT_VISIT)
    emergency = await fed.add_person(
        make_id_number("370102", seq=42), "急诊", source="bureau-370000", region="370102"
    )
    await fed.add_visits(emergency, 1, source="bureau-370000", institution=JINAN)
    ids = {
        "jinan": await _read(fed, app, JINAN, ref),
        "hangzhou": await _read(fed, app, HANGZHOU, local),
        # The client gives the break-glass reason (tests.support.federation).
        "glass": await _read(fed, app, HANGZHOU, emergency, "EMERGENCY"),
    }
    return fed, app, ids


async def _visible(fed, app, org: str) -> tuple[set[str], list[dict]]:
    async with fed.client(app, fed.token("auditor", org), "AUDIT") as c:
        events = (await gql(c, EVENTS))["data"]["auditEvents"]["nodes"]
        alerts = (await gql(c, ALERTS))["data"]["auditAlerts"]["nodes"]
    return {e["requestId"] for e in events}, alerts


@pytest.mark.parametrize(
    "auditor, sees, hidden",
    [
        (JINAN, {"jinan"}, {"hangzhou", "glass"}),  # its own clinician
        (HANGZHOU, {"hangzhou", "glass"}, {"jinan"}),
        ("370000", {"jinan", "glass"}, {"hangzhou"}),  # Shandong: its bureau's data was read
        ("330100", {"hangzhou", "glass"}, {"jinan"}),  # Hangzhou city: its hospital acted
        ("220000", set(), {"jinan", "hangzhou", "glass"}),  # Jilin: no party there
        ("100000", {"jinan", "hangzhou", "glass"}, set()),  # national: everything
    ],
)
async def test_an_auditor_sees_the_events_of_its_scope_only(traffic, auditor, sees, hidden):
    fed, app, ids = traffic
    visible, alerts = await _visible(fed, app, auditor)
    assert {name for name, rid in ids.items() if rid in visible} == sees
    assert not {ids[name] for name in hidden} & visible
    glass_alerts = [a for a in alerts if a["rule"] == "BREAK_GLASS"]
    assert bool(glass_alerts) is ("glass" in sees)


async def _index_of(fed, app, request_id: str) -> int:
    async with fed.client(app, fed.token("auditor", "100000"), "AUDIT") as c:
        events = (await gql(c, EVENTS))["data"]["auditEvents"]["nodes"]
    return next(e["index"] for e in events if e["requestId"] == request_id)


async def test_proofs_are_given_only_for_events_in_scope(traffic):
    fed, app, ids = traffic
    jinan = await _index_of(fed, app, ids["jinan"])
    hangzhou = await _index_of(fed, app, ids["hangzhou"])
    proof = "query($i: Int!) { auditProof(index: $i) { index leafHash } }"
    async with fed.client(app, fed.token("auditor", JINAN), "AUDIT") as c:
        mine = await gql(c, proof, {"i": jinan})
        theirs = await gql(c, proof, {"i": hangzhou})
        http_mine = await c.get(f"/audit/proof?index={jinan}")
        http_theirs = await c.get(f"/audit/proof?index={hangzhou}")
    assert mine["data"]["auditProof"]["index"] == jinan
    assert theirs["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert theirs["data"] is None or theirs["data"]["auditProof"] is None
    assert http_mine.status_code == 200 and http_mine.json()["index"] == jinan
    assert http_theirs.status_code == 403 and "leaf" not in http_theirs.text


async def test_an_export_holds_the_events_in_scope_only(traffic):
    fed, app, ids = traffic
    async with fed.client(app, fed.token("auditor", HANGZHOU), "AUDIT") as c:
        lines = (await c.get("/audit/export?format=jsonl")).content.splitlines()
        bundle = (await c.get("/audit/export?format=fhir")).json()
    exported = {orjson.loads(line)["event"]["requestId"] for line in lines}
    assert {ids["hangzhou"], ids["glass"]} <= exported and ids["jinan"] not in exported
    # The FHIR export holds the same events (and the auditor's first export, in scope too).
    in_fhir = {e["resource"]["id"] for e in bundle["entry"]}
    assert {f"medfed-audit-{orjson.loads(line)['index']}" for line in lines} <= in_fhir
    assert len(in_fhir) == len(lines) + 1
    async with fed.client(app, fed.token("auditor", "100000"), "AUDIT") as c:
        lines = (await c.get("/audit/export?format=jsonl")).content.splitlines()
    assert set(ids.values()) <= {orjson.loads(line)["event"]["requestId"] for line in lines}
    async with fed.client(app, fed.token("clinician", HANGZHOU), "TREATMENT") as c:
        assert (await c.get("/audit/export")).status_code == 403
