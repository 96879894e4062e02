"""De-identified extracts: requested, approved, written; k-anonymous and l-diverse when read
back with pyarrow (counted here, not by the code that made them); per-partner pseudonyms;
consent to research brings more detail."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from gateway.startup import open_keyring
from security.privacy.pseudonyms import PartnerPseudonyms
from tests.support.audit import logged
from tests.support.federation import gql

RESEARCH = "R11010800001"
OTHER = "R31010400002"
REQUEST = """mutation($k: String!, $c: [String!]!, $d: ExtractDetail!) {
  requestExtract(idempotencyKey: $k, input: {classes: $c, detail: $d}) {
    job { jobId status } replayed } }"""
APPROVE = """mutation($k: String!, $j: ID!) { approveExtract(idempotencyKey: $k, jobId: $j) {
  job { jobId status rows persons sha256 k l suppressedRows generalisation } } }"""
QI = ("birth", "gender", "region", "period")


def unsafe_classes(table, k: int, l: int) -> list:  # noqa: E741
    """Equivalence classes on the quasi-identifiers with fewer than k persons or fewer than
    l diagnoses: the independent check."""
    persons: dict[tuple, set] = {}
    diagnoses: dict[tuple, set] = {}
    columns = table.to_pydict()
    for i in range(table.num_rows):
        key = tuple(columns[q][i] for q in QI if q in columns)
        persons.setdefault(key, set()).add(columns["pseudonym"][i])
        diagnoses.setdefault(key, set()).add(columns["diagnosis"][i])
    return [key for key in persons if len(persons[key]) < k or len(diagnoses[key]) < l]


async def _extract(demo, app, org, classes, key, detail="COARSE", role="researcher"):
    purpose = "RESEARCH" if role == "researcher" else "UNDERWRITING"
    async with demo.client(app, demo.token(role, org), purpose) as c:
        asked = await gql(c, REQUEST, {"k": key, "c": classes, "d": detail})
    job = asked["data"]["requestExtract"]["job"]
    assert job["status"] == "REQUESTED"
    async with demo.client(app, demo.token("admin", "100000"), "AUDIT") as c:
        done = await gql(c, APPROVE, {"k": key, "j": job["jobId"]})
    assert "errors" not in done, done
    written = done["data"]["approveExtract"]["job"]
    assert written["status"] == "WRITTEN"
    path = demo.data_dir / "extracts" / job["jobId"] / "extract.parquet"
    return written, pq.read_table(path), path


def _refs(demo) -> list[str]:
    refs = []
    for bureau in ("bureau-330000", "bureau-370000", "bureau-220000"):
        with sqlite3.connect(demo.data_dir / "sources" / f"{bureau}.db") as conn:
            refs += [r for (r,) in conn.execute("SELECT DISTINCT person_ref FROM visits")]
    return refs


async def test_an_approved_extract_is_k_anonymous_and_l_diverse_read_back(demo):
    app = demo.app()
    job, table, path = await _extract(demo, app, RESEARCH, ["identity", "visit", "diagnosis"], "a")
    assert job["k"] == 5 and job["l"] == 2 and job["rows"] == table.num_rows > 1000
    assert table.column_names == [
        "pseudonym",
        "birth",
        "gender",
        "region",
        "period",
        "visit_type",
        "institution_level",
        "treatment_province",
        "diagnosis",
    ]
    assert unsafe_classes(table, 5, 2) == []
    # Generalised as the brief says: no exact birth date, no district, no day.
    columns = table.to_pydict()
    assert all(len(b) in (1, 9) for b in columns["birth"])  # "1980-1984" (or coarser), or *
    assert all(r == "*" or r.endswith("00") for r in columns["region"])
    assert all(len(p) in (1, 4, 7) for p in columns["period"])  # YYYY-MM, YYYY-Qn, YYYY, *
    # No federation pseudonym survives.
    refs = set(_refs(demo))
    assert not refs & set(columns["pseudonym"])
    dictionary = json.loads((path.parent / "dictionary.json").read_text(encoding="utf-8"))
    assert dictionary["k"] == 5 and dictionary["sha256"] == job["sha256"]
    assert {c["name"] for c in dictionary["columns"]} == set(table.column_names)
    kinds = [(e["extract"]["action"]) for e in await logged(demo) if e["kind"] == "EXTRACT"]
    assert kinds == ["REQUESTED", "APPROVED", "WRITTEN"]


def test_the_independent_check_finds_an_unsafe_class():
    """Positive control for the check above."""
    import pyarrow as pa

    table = pa.table(
        {
            "pseudonym": ["a", "b", "c", "d", "e", "f"],
            "birth": ["1980-1984"] * 5 + ["1990-1994"],
            "gender": ["MALE"] * 6,
            "region": ["330000"] * 6,
            "period": ["2020-Q1"] * 6,
            "diagnosis": ["I10", "E11", "I10", "J06", "I10", "I10"],
        }
    )
    assert unsafe_classes(table, 5, 2) == [("1990-1994", "MALE", "330000", "2020-Q1")]


async def test_two_partners_cannot_join_their_extracts(demo):
    app = demo.app()
    classes = ["identity", "visit", "diagnosis"]
    _, first, _ = await _extract(demo, app, RESEARCH, classes, "p1")
    _, other, _ = await _extract(demo, app, OTHER, classes, "p2")
    _, again, _ = await _extract(demo, app, RESEARCH, classes, "p3")
    mine = set(first.column("pseudonym").to_pylist())
    assert not mine & set(other.column("pseudonym").to_pylist())
    assert mine == set(again.column("pseudonym").to_pylist())  # stable for one partner
    keyring = open_keyring(demo.settings, create=False)
    expected = {PartnerPseudonyms(keyring, RESEARCH).of(r) for r in _refs(demo)}
    assert mine <= expected


async def test_a_consented_person_appears_with_more_detail(demo):
    app = demo.app()
    refs = _refs(demo)
    consenting = refs[0]
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    grant = """mutation($k: String!, $g: String!, $p: PurposeOfUse!, $u: DateTime!) {
      grantConsent(idempotencyKey: $k, input: {grantee: $g, dataClasses: [PRESCRIPTION],
        purpose: $p, validUntil: $u}) { consent { consentId grantee } } }"""
    async with demo.client(
        app, demo.token("patient", "330000", person=consenting), "PATIENT_ACCESS"
    ) as c:
        ok = await gql(c, grant, {"k": "c1", "g": RESEARCH, "p": "RESEARCH", "u": until})
        wrong = await gql(c, grant, {"k": "c2", "g": RESEARCH, "p": "TREATMENT", "u": until})
        insurer = await gql(
            c, grant, {"k": "c3", "g": "C31010400003", "p": "UNDERWRITING", "u": until}
        )
        not_for_research = await gql(
            c, grant, {"k": "c4", "g": RESEARCH, "p": "UNDERWRITING", "u": until}
        )
    assert ok["data"]["grantConsent"]["consent"]["grantee"] == RESEARCH
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert insurer["data"]["grantConsent"]["consent"]["grantee"] == "C31010400003"
    assert not_for_research["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    classes = ["identity", "visit", "diagnosis", "prescription"]
    _, table, _ = await _extract(demo, app, RESEARCH, classes, "c")
    keyring = open_keyring(demo.settings, create=False)
    theirs = PartnerPseudonyms(keyring, RESEARCH).of(consenting)
    columns = table.to_pydict()
    detailed = {
        columns["pseudonym"][i]
        for i in range(table.num_rows)
        if columns["drug_classes"][i] is not None
    }
    assert detailed <= {theirs}
    assert unsafe_classes(table, 5, 2) == []
    # The other partner's extract shows nobody's prescriptions: the consent names one partner.
    _, other, _ = await _extract(demo, app, OTHER, classes, "c-other")
    assert set(other.column("drug_classes").to_pylist()) == {None}


async def test_extracts_only_as_the_grade_allows(demo):
    app = demo.app()
    async with demo.client(app, demo.token("researcher", RESEARCH), "RESEARCH") as c:
        lab = await gql(c, REQUEST, {"k": "x1", "c": ["identity", "lab_result"], "d": "COARSE"})
        jobs = await gql(c, "{ extractJobs { jobId } }")
    assert lab["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert jobs["data"]["extractJobs"] == []
    async with demo.client(app, demo.token("clinician", "H33010600001"), "TREATMENT") as c:
        clinician = await gql(c, REQUEST, {"k": "x2", "c": ["identity"], "d": "COARSE"})
    assert clinician["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with demo.client(
        app, demo.token("commercial_insurer", "C31010400003"), "UNDERWRITING"
    ) as c:
        insurer = await gql(c, REQUEST, {"k": "x3", "c": ["identity", "diagnosis"], "d": "COARSE"})
        mine = await gql(c, REQUEST, {"k": "x4", "c": ["identity", "settlement"], "d": "COARSE"})
    # Diagnoses only for consented persons at the insurer's grade: accepted as asked, and the
    # column is empty for everyone who did not consent.
    assert "errors" not in insurer and "errors" not in mine
    job = mine["data"]["requestExtract"]["job"]
    async with demo.client(app, demo.token("researcher", RESEARCH), "RESEARCH") as c:
        self_approve = await gql(c, APPROVE, {"k": "x5", "j": job["jobId"]})
    assert self_approve["errors"][0]["extensions"]["code"] == "FORBIDDEN"
