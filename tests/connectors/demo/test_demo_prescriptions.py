"""The demo's e-prescriptions: each source hospital's originals agree with the bureau's
copies and the pharmacies' dispensings and deliveries, and every event chain is one the
state machine allows."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from connectors.domain import prescriptions as machine
from tests.support.demo import build, db

HOSPITALS = ["hospital-h33010600001", "hospital-h37010200003"]
PHARMACIES = ["pharmacy-p33010600101", "pharmacy-p37010200102"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("rx") / "data"
    build(path, 300)
    return path


def _all(demo, source: str, sql: str) -> list[dict]:
    conn = db(demo, source)
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def test_hospital_originals_agree_with_bureau_copies_and_pharmacies(demo):
    bureau = {
        r["rx_id"]: r
        for source in ("bureau-330000", "bureau-370000")
        for r in _all(demo, source, "SELECT * FROM prescriptions")
    }
    dispensings = {
        r["rx_id"]: r for p in PHARMACIES for r in _all(demo, p, "SELECT * FROM dispensings")
    }
    deliveries = defaultdict(list)
    for p in PHARMACIES:
        for r in _all(demo, p, "SELECT * FROM rx_deliveries ORDER BY at"):
            deliveries[r["rx_id"]].append(r)
    states = defaultdict(int)
    for hospital in HOSPITALS:
        originals = _all(demo, hospital, "SELECT * FROM e_prescriptions")
        events = defaultdict(list)
        for e in _all(demo, hospital, "SELECT * FROM e_prescription_events ORDER BY rx_id, seq"):
            events[e["rx_id"]].append(e)
        assert originals
        for rx in originals:
            copy = bureau[rx["rx_id"]]
            for column in ("mdtrt_id", "doctor_code", "review_status", "circulated_to"):
                assert rx[column] == copy[column]
            chain = events[rx["rx_id"]]
            assert (
                [e["seq"] for e in chain]
                == list(range(1, len(chain) + 1))
                == list(range(1, rx["version"] + 1))
            )
            # every step is one the machine allows, and the last one is the stored state
            state = None
            for e in chain:
                kind = machine.Kind(e["kind"])
                if kind is machine.Kind.ISSUED:
                    assert state is None
                    state = machine.State.PENDING_REVIEW
                else:
                    assert e["from_status"] == state.value
                    approved = json.loads(e["detail"]).get("decision") != "REJECTED"
                    state = machine.target(kind, state, approved=approved)
                assert e["to_status"] == state.value
            assert rx["status"] == state.value
            states[state.value] += 1
            dispensing = dispensings.get(rx["rx_id"])
            if dispensing is not None:
                assert rx["status"] in ("DISPENSED", "SHIPPED", "DELIVERED")
                assert dispensing["dispensed_at"] < rx["expires_at"]
                assert dispensing["pharmacy_code"] == rx["circulated_to"]
                assert dispensing["cert_type"] in ("01", "02", "03")
                if dispensing["delivered"]:
                    shipped = deliveries[rx["rx_id"]]
                    assert [d["event"] for d in shipped] == ["SHIPPED", "DELIVERED"]
                    assert {d["paid_by"] for d in shipped} == {"PATIENT"}
                    assert rx["status"] == "DELIVERED"
    # the demo shows the workflow's outcomes, not only its happy path
    assert {"APPROVED", "DISPENSED", "DELIVERED"} <= set(states)


def test_each_dispensing_is_settled_once_by_a_settlement_naming_it(demo):
    """The key the trace follows: a PHARMACY settlement names its dispensing, of the same
    person, pharmacy and total; no other settlement names one."""
    dispensings = {
        r["dispensing_id"]: r
        for p in PHARMACIES
        for r in _all(demo, p, "SELECT * FROM dispensings")
    }
    named = defaultdict(list)
    for source in ("bureau-330000", "bureau-370000"):
        for s in _all(demo, source, "SELECT * FROM settlements WHERE dispensing_id IS NOT NULL"):
            named[s["dispensing_id"]].append(s)
    assert dispensings and set(named) <= set(dispensings)
    for dispensing_id, dispensing in dispensings.items():
        if dispensing["pharmacy_code"][1:3] not in ("33", "37"):
            continue  # settled by a bureau that is not a source of the demo
        (settlement,) = named[dispensing_id]
        assert settlement["med_type"] == "PHARMACY"
        assert settlement["person_ref"] == dispensing["person_ref"]
        assert settlement["institution_code"] == dispensing["pharmacy_code"]
        assert settlement["total_fen"] == dispensing["total_fen"]


def test_every_demo_prescription_and_step_is_signed_with_its_professionals_key(demo):
    from datetime import datetime

    from connectors.sql import rx_verify
    from security.crypto.professional_keys import ProfessionalKeys

    keys = ProfessionalKeys(demo / "keys")

    def rows_of(source: str, table: str) -> dict[str, list[dict]]:
        grouped = defaultdict(list)
        for r in _all(demo, source, f"SELECT * FROM {table}"):
            for column in ("issued_at", "expires_at", "at"):  # SQLite keeps them as text
                if isinstance(r.get(column), str):
                    r[column] = datetime.fromisoformat(r[column])
            grouped[r["rx_id"]].append(r)
        return grouped

    checked = 0
    for hospital in HOSPITALS:
        items = rows_of(hospital, "e_prescription_items")
        events = rows_of(hospital, "e_prescription_events")
        for rx_id, (rx,) in rows_of(hospital, "e_prescriptions").items():
            result = rx_verify.check_rows(rx, items[rx_id], events[rx_id], keys)
            assert result.ok, (rx_id, result)
            assert result.signer == f"{rx['institution_code']}/{rx['doctor_code']}"
            checked += 1
    assert checked > 20
    # the bureau's copies are signed over their own form (no expiry) by the same doctor
    bureau_items = rows_of("bureau-330000", "prescription_items")
    for rx_id, (copy,) in list(rows_of("bureau-330000", "prescriptions").items())[:50]:
        document = machine.prescription_document(copy, bureau_items[rx_id])
        assert keys.verify(copy["doctor_signature"], document).valid
