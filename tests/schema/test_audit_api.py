"""The auditors' view of the log: filters, pages, proofs, alerts, a patient's access log."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from gateway.app import build_services
from security.audit import merkle, open_checkpoint
from security.audit.signer import VERIFIER_KEY_FILE, parse_verifier_key
from tests.support.audit import logged, raw_entries, verify
from tests.support.federation import RECENT_VISIT, Federation, gql, make_id_number

EVENTS = """query($f: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(filter: $f, first: $first, after: $after) {
    nodes { index kind outcome breakGlass purpose principal { sub role org }
            persons { personId relation read { field dataClass level } denied { field } } }
    pageInfo { hasNextPage endCursor } } }"""
READ = "query($id: ID!) { person(personId: $id) { name gender } }"


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    fed.settings = fed.settings.with_tables(audit={"alerts": {"probing_denials": 3}})
    alice = await fed.add_person(make_id_number(seq=101), "王五")
    bob = await fed.add_person(make_id_number(seq=202), "赵六")
    for ref in (alice, bob):  # a recent visit at H33010600001: that hospital treats both
        await fed.add_result(ref)
        await fed.add_visits(ref, 1, begin=RECENT_VISIT)
    services = build_services(fed.settings)
    return fed, alice, bob, services, fed.app(services)


def _auditor(fed, app):
    return fed.client(app, fed.token("auditor", "330000"), "AUDIT")


async def _traffic(fed, app, alice, bob):
    """A treating clinician reads both persons in one request; a stranger is denied Alice."""
    async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        await gql(
            c,
            "query($a: ID!, $b: ID!) { a: person(personId: $a) { name } "
            "b: person(personId: $b) { name } }",
            {"a": alice, "b": bob},
        )
    async with fed.client(app, fed.token("clinician", "H22010200005"), "TREATMENT") as c:
        await gql(c, READ, {"id": alice})
    async with fed.client(app, fed.token("patient", "330106", person=alice)) as c:
        await gql(c, "{ me { name } }")


async def test_audit_events_filters_and_pages(world):
    fed, alice, bob, services, app = world
    await _traffic(fed, app, alice, bob)
    async with _auditor(fed, app) as c:
        every = (await gql(c, EVENTS))["data"]["auditEvents"]["nodes"]
        assert [e["index"] for e in every] == [2, 1, 0]  # newest first
        denied = (await gql(c, EVENTS, {"f": {"outcome": "DENIED"}}))["data"]["auditEvents"]
        assert [e["principal"]["org"] for e in denied["nodes"]] == ["H22010200005"]
        assert denied["nodes"][0]["persons"][0]["denied"] == [
            {"field": "Person.gender"},
            {"field": "Person.name"},
        ]
        by_bob = (await gql(c, EVENTS, {"f": {"person": bob}}))["data"]["auditEvents"]["nodes"]
        assert [e["index"] for e in by_bob] == [0]
        patients = (await gql(c, EVENTS, {"f": {"role": "patient", "fieldClass": "identity"}}))[
            "data"
        ]["auditEvents"]["nodes"]
        assert [e["purpose"] for e in patients] == ["PATIENT_ACCESS"]
        none = await gql(c, EVENTS, {"f": {"fieldClass": "lab_result"}})
        assert none["data"]["auditEvents"]["nodes"] == []
        seen, after = [], None
        while True:
            page = (await gql(c, EVENTS, {"first": 1, "after": after}))["data"]["auditEvents"]
            seen += [e["index"] for e in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == [2, 1, 0]
    assert (await verify(fed, services)).ok


@pytest.mark.parametrize(
    "field",
    [
        "auditEvents { nodes { index } }",
        "auditCheckpoint { size }",
        "auditProof(index: 0) { size }",
        "auditAlerts { nodes { rule } }",
    ],
)
async def test_only_auditors_may_read_the_log(world, field):
    fed, alice, bob, _services, app = world
    await _traffic(fed, app, alice, bob)
    for token, purpose in (
        (fed.token("clinician", "H33010600001"), "TREATMENT"),
        (fed.token("patient", "330106", person=alice), None),
        (fed.token("admin", "330000"), "AUDIT"),
    ):
        async with fed.client(app, token, purpose) as c:
            body = await gql(c, "{ " + field + " }")
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        assert (await c.get("/audit/checkpoint")).status_code == 403


async def test_patient_sees_who_looked_at_their_record_and_nobody_else(world):
    fed, alice, bob, _services, app = world
    await _traffic(fed, app, alice, bob)
    async with fed.client(app, fed.token("patient", "330106", person=alice)) as c:
        body = await gql(
            c,
            """{ myAccessLog { nodes { index outcome clientAddress
            principal { role org } persons { personId read { field } denied { field } } } } }""",
        )
    nodes = body["data"]["myAccessLog"]["nodes"]
    assert [(n["principal"]["role"], n["principal"]["org"], n["outcome"]) for n in nodes] == [
        ("patient", "330106", "OK"),
        ("clinician", "H22010200005", "DENIED"),
        ("clinician", "H33010600001", "OK"),
    ]
    assert all(p["personId"] == alice for n in nodes for p in n["persons"])
    assert all(n["clientAddress"] is None for n in nodes)
    assert nodes[2]["persons"][0]["read"] == [{"field": "Person.name"}]
    async with fed.client(app, fed.token("patient", "330106", person=bob)) as c:
        body = await gql(c, "{ myAccessLog { nodes { index } } }")
    assert [n["index"] for n in body["data"]["myAccessLog"]["nodes"]] == [0]


async def test_checkpoint_and_proofs_verify_without_trusting_the_gateway(world):
    fed, alice, bob, _services, app = world
    await _traffic(fed, app, alice, bob)
    key = parse_verifier_key((fed.data_dir / "keys" / VERIFIER_KEY_FILE).read_text())
    async with _auditor(fed, app) as c:
        first = (await gql(c, "{ auditCheckpoint { note size rootHash } }"))["data"]
        note = first["auditCheckpoint"]["note"]
        checkpoint = open_checkpoint(note, [key])
        assert checkpoint.size == first["auditCheckpoint"]["size"] == 3
        proof = (await gql(c, "{ auditProof(index: 1, size: 3) { leafHash rootHash path } }"))[
            "data"
        ]["auditProof"]
        b = base64.b64decode
        assert b(proof["rootHash"]) == checkpoint.root
        assert merkle.verify_inclusion(
            1, 3, b(proof["leafHash"]), [b(h) for h in proof["path"]], checkpoint.root
        )
        http = await c.get("/audit/checkpoint")
        # The auditor's own two reads above are logged too, so the log has grown by two.
        assert http.status_code == 200
        assert open_checkpoint(http.text, [key]).size == 5
        http = await c.get("/audit/proof", params={"index": 1, "size": 3})
        assert http.json()["leaf_hash"] == proof["leafHash"]
    await _traffic(fed, app, alice, bob)
    async with _auditor(fed, app) as c:
        later = (await gql(c, "{ auditCheckpoint { note size } }"))["data"]["auditCheckpoint"]
        newer = open_checkpoint(later["note"], [key])
        cons = (await gql(c, "{ auditConsistency(fromSize: 3, toSize: 10) { path } }"))["data"][
            "auditConsistency"
        ]
    assert newer.size == 10  # 3 accesses, the auditor's 4 reads, 3 more accesses
    assert merkle.verify_consistency(
        3, checkpoint.root, 10, newer.root, [base64.b64decode(h) for h in cons["path"]]
    )


async def test_alerts_fire_for_break_glass_and_probing(world):
    fed, alice, bob, services, app = world
    emergency = fed.token("clinician", "H22010200005", purposes=["TREATMENT", "EMERGENCY"])
    async with fed.client(app, emergency, "EMERGENCY") as c:
        body = await gql(
            c,
            "query($id: ID!) { person(personId: $id) { name cloudRecord { "
            "visits(first: 5) { nodes { diagnosisText } } } } }",
            {"id": bob},
        )
    assert body["data"]["person"]["name"]
    probe = fed.token("clinician", "H37010200003")
    async with fed.client(app, probe, "TREATMENT") as c:
        for _ in range(3):
            await gql(c, READ, {"id": alice})
    events = await logged(fed)
    assert events[0]["breakGlass"] is True
    async with _auditor(fed, app) as c:
        alerts = (await gql(c, "{ auditAlerts { nodes { rule index principal personId } } }"))[
            "data"
        ]["auditAlerts"]["nodes"]
        flagged = (await gql(c, EVENTS, {"f": {"breakGlass": True}}))["data"]["auditEvents"]
    assert [(a["rule"], a["index"]) for a in alerts] == [("PROBING", 3), ("BREAK_GLASS", 0)]
    assert alerts[1]["personId"] == bob
    assert alerts[0]["principal"] == "demo-clinician-H37010200003"
    assert [e["index"] for e in flagged["nodes"]] == [0]
    assert (await verify(fed, services)).ok


@pytest.mark.parametrize("remember", [100_000, 1], ids=["remembers", "forgets"])
async def test_volume_spike_fires_once_when_a_principal_reads_more_persons(
    data_dir, monkeypatch, remember
):
    import functools

    from security.audit import alerts

    # With a memory of one read, the evaluator forgets and queries the index instead: the
    # alerts must be the same.
    monkeypatch.setattr(
        alerts, "AlertEvaluator", functools.partial(alerts.AlertEvaluator, remember=remember)
    )
    fed = await Federation(data_dir).setup()
    fed.settings = fed.settings.with_tables(audit={"alerts": {"volume_persons": 1}})
    alice = await fed.add_person(make_id_number(seq=101), "王五")
    bob = await fed.add_person(make_id_number(seq=202), "赵六")
    for ref in (alice, bob):
        await fed.add_visits(ref, 1, begin=RECENT_VISIT)
    services = build_services(fed.settings)
    app = fed.app(services)
    async with fed.client(app, fed.token("clinician", "H33010600001"), "TREATMENT") as c:
        for ref in (alice, alice, bob, alice, bob):  # the second person is event 2
            assert "errors" not in await gql(c, READ, {"id": ref})
    async with _auditor(fed, app) as c:
        found = (await gql(c, "{ auditAlerts { nodes { rule index principal } } }"))["data"][
            "auditAlerts"
        ]["nodes"]
    assert found == [
        {"rule": "VOLUME_SPIKE", "index": 2, "principal": "demo-clinician-H33010600001"}
    ]


async def test_exports_validate_as_fhir_audit_events_and_match_the_log(world, tmp_path):
    import asyncio
    import json

    from fhir.resources.R4B.auditevent import AuditEvent
    from fhir.resources.R4B.bundle import Bundle

    from gateway.cli import main

    fed, alice, bob, services, app = world
    await _traffic(fed, app, alice, bob)
    emergency = fed.token("clinician", "H22010200005", purposes=["TREATMENT", "EMERGENCY"])
    async with fed.client(app, emergency, "EMERGENCY") as c:
        await gql(c, READ, {"id": bob})
    async with fed.client(app, "not-a-token") as c:
        assert (await c.post("/graphql", json={"query": "{ me { name } }"})).status_code == 401
    await services.extras["audit"].close()
    base = ["--data-dir", str(fed.data_dir), "audit", "export"]
    fhir, lines = tmp_path / "audit.json", tmp_path / "audit.jsonl"
    assert await asyncio.to_thread(main, [*base, "--format", "fhir", "-o", str(fhir)]) == 0
    assert await asyncio.to_thread(main, [*base, "--format", "jsonl", "-o", str(lines)]) == 0

    bundle = json.loads(fhir.read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    resources = [AuditEvent.model_validate(e["resource"]) for e in bundle["entry"]]
    assert len(resources) == 5
    assert [r.outcome for r in resources] == ["0", "4", "0", "0", "4"]
    persons = [d.what.identifier.value for d in resources[0].entity if d.what.identifier]
    assert sorted(persons) == sorted([alice, bob])
    assert resources[3].purposeOfEvent[0].coding[0].code == "ETREAT"
    assert resources[4].type.code == "110114"  # DICOM "User Authentication"
    assert "王五" not in fhir.read_text(encoding="utf-8")

    stored = [json.loads(line) for line in lines.read_text(encoding="utf-8").splitlines()]
    assert [s["index"] for s in stored] == [0, 1, 2, 3, 4]
    assert stored == [json.loads(e) for e in await raw_entries(fed)]
    future = ["--from", "2999-01-01"]
    assert await asyncio.to_thread(main, [*base, *future, "-o", str(lines)]) == 0
    assert lines.read_text(encoding="utf-8") == ""
    assert (await verify(fed, services)).ok


async def test_access_log_names_institutions_and_proofs_carry_their_entry(world):
    """For the pages: who saw my data by institution name, and a proof a browser can check
    from the logged entry itself."""
    fed, alice, bob, _services, app = world
    await _traffic(fed, app, alice, bob)
    async with fed.client(app, fed.token("patient", "330106", person=alice)) as c:
        body = await gql(c, "{ myAccessLog { nodes { principal { org institution { name } } } } }")
    named = {
        n["principal"]["org"]: n["principal"]["institution"]
        for n in body["data"]["myAccessLog"]["nodes"]
    }
    assert named["H33010600001"]["name"] and named["H22010200005"]["name"]
    assert named["330106"] is None  # a region's body is no directory institution
    async with _auditor(fed, app) as c:
        proof = (await gql(c, "{ auditProof(index: 1, size: 3) { index leafHash entry } }"))[
            "data"
        ]["auditProof"]
    entry = proof["entry"].encode("utf-8")
    assert hashlib.sha256(b"\x00" + entry).digest() == base64.b64decode(proof["leafHash"])
    assert json.loads(entry)["index"] == 1
