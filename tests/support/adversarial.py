"""The adversarial world: a victim person whom no attacker relates to, the attackers, the
attack queries, and the leak check that looks for the victim's plain and masked values in
response bytes and insists that each attack was executed (a refused request tests nothing).
"""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta

from connectors.sql.models import platform
from tests.support.federation import RECENT_VISIT, Federation, make_id_number

NAME, PHONE, ADDRESS = "欧阳秘密", "13987654321", "绝密路88号"
DIAGNOSIS, FINDINGS = "机密诊断文本甲", "机密影像所见乙"
VICTIM_ID = make_id_number("370102", seq=777)

# The victim is insured in Shandong (370102), treated at H37010200003 in Jinan, and had a
# cross-province stay in Jilin; nobody below but the legitimate callers relates to them.
ATTACKERS = [
    ("patient", "330106", None),  # another patient
    ("clinician", "H33010600001", ["TREATMENT"]),
    ("pharmacist", "P37010200102", None),
    ("insurance_agency", "330100", ["FUND_SUPERVISION"]),  # one purpose: no header needed
    ("settlement_center", "330000", None),
    ("researcher", "110000", None),
    ("commercial_insurer", "110000", None),
    ("auditor", "110000", None),
    ("admin", "110000", None),
]

PERSON_FIELDS = "personId name idNumber gender birthDate phone address insuredRegion"
DEEP = """cloudRecord {
  enrollments(first: 100) { nodes { enrollmentId accountBalance } }
  visits(first: 100) { edges { cursor node { visitId diagnosisText diagnosisCodes
      institution { name } prescriptions { prescriptionId items { drugName dosage } } } } }
  prescriptions(first: 100) { nodes { prescriptionId items { drugName } } }
  settlements(first: 100) { nodes { settlementId total personId institution { name } } }
  filings(first: 100) { nodes { filingId name } }
  testResults(first: 100) { nodes { resultId findings impression value
      referenceRange { low high } recognition { recognized } performingInstitution { name } } }
  drugPurchases(first: 100) { nodes { purchaseId items { drugName } } }
}"""

ATTACKS = {
    "plain": (f"query($id: ID!) {{ person(personId: $id) {{ {PERSON_FIELDS} {DEEP} }} }}", {}),
    "by id number": (f"query($n: String!) {{ person(idNumber: $n) {{ {PERSON_FIELDS} }} }}", {}),
    "aliases": (
        """query($id: ID!) { a: person(personId: $id) { x: name y: idNumber z: phone
        w: address r: cloudRecord { v: visits(first: 100) { e: edges { n: node {
        d: diagnosisText } } } t: testResults { n: nodes { f: findings } } } }
        b: person(personId: $id) { name1: name name2: name } }""",
        {},
    ),
    "fragments": (
        """query($id: ID!) { person(personId: $id) { ...P cloudRecord { ...C } } }
        fragment P on Person { name idNumber phone address birthDate }
        fragment C on CloudRecord { visits { nodes { ...V } } testResults { nodes { ...R } } }
        fragment V on Visit { diagnosisText diagnosisCodes }
        fragment R on TestResult { findings impression }""",
        {},
    ),
    "inline fragments": (
        """query($id: ID!) { ... on Query { person(personId: $id) {
        ... on Person { name ... on Person { idNumber phone } }
        cloudRecord { ... on CloudRecord { visits { nodes { ... on Visit { diagnosisText } } }
        } } } } }""",
        {},
    ),
    "top-level lists": (
        """query($id: ID!) {
        testResults(personId: $id, first: 100) { edges { cursor node { findings impression
            value } } }
        filings(personId: $id) { nodes { name personId } }
        settlements(filter: {personId: $id}) { nodes { total personId } } }""",
        {},
    ),
    # The victim's own province and the province that treated them.
    "regional lists": (
        """{ filings(insuredRegion: "370000") { nodes { name } }
        settlements(filter: {insuredRegion: "370000"}) { nodes { total personId } }
        treated: settlements(filter: {treatmentRegion: "220000"}) { nodes { total } } }""",
        {},
    ),
    "directives and variables": (
        """query($id: ID!, $yes: Boolean = true, $no: Boolean!) {
        person(personId: $id) { name @include(if: $yes) idNumber @skip(if: $no)
        ... @include(if: $yes) { phone address } } }""",
        {"no": False},
    ),
    "two operations": (
        """query Harmless { institutions { nodes { code } } }
        query Attack($id: ID!) { person(personId: $id) { name idNumber phone } }""",
        {},
    ),
}


BIRTH_DATE = "1980-05-17"  # make_id_number's default: the date inside VICTIM_ID
FILING_ID = "F-VICTIM-0001"


def secrets() -> list[str]:
    return [NAME, VICTIM_ID, PHONE, ADDRESS, DIAGNOSIS, FINDINGS, BIRTH_DATE]


def masked_secrets() -> list[str]:
    """The victim's values as a MASK decision shows them: where DENY is due, a masked value
    in the response is a leak as well (``欧***`` still names the surname)."""
    from security.masking import mask_id_number, mask_name, mask_phone

    return [mask_name(NAME), mask_id_number(VICTIM_ID), mask_phone(PHONE)]


async def world_rows(fed: Federation) -> str:
    """The victim's rows (shared with the fuzz test); returns their personId."""
    ref = await fed.add_person(
        VICTIM_ID, NAME, source="bureau-370000", region="370102", phone=PHONE, address=ADDRESS
    )
    # Recent visits at the Jinan hospital, recorded by the Shandong bureau: that hospital
    # treats the victim.
    await fed.add_visits(
        ref,
        3,
        source="bureau-370000",
        institution="H37010200003",
        insured="370102",
        text=DIAGNOSIS,
        begin=RECENT_VISIT,
    )
    await fed.add_result(
        ref,
        source="hospital-h37010200003",
        category="IMAGING",
        item_code="CT",
        modality="CT",
        findings=FINDINGS,
        reported_at=datetime.now() - timedelta(days=3),
    )
    await fed.add_cross_settlement(
        ref,
        when=datetime(2024, 3, 5),
        insured="370102",
        treated="220102",
        institution="H22010200005",
    )
    # The filing (备案) for that stay: a second place the victim's name is stored.
    await fed.insert(
        "platform",
        platform.Filing,
        [
            dict(
                filing_id=FILING_ID,
                person_ref=ref,
                id_number_bidx=fed.indexer.id_number(VICTIM_ID),
                name_enc=fed.enc("platform", "filings", "name_enc", FILING_ID, NAME),
                insuplc_admdvs="370102",
                mdtrtarea_admvs="220102",
                category="TEMPORARY",
                channel="APP",
                status="ACTIVE",
                filed_at=datetime(2024, 3, 1),
                valid_from=date(2024, 3, 1),
                valid_until=None,
            )
        ],
    )
    return ref


async def post(
    fed,
    app,
    role,
    org,
    purposes,
    query,
    variables,
    purpose=None,
    person=None,
    operation=None,
    professional=None,
):
    token = fed.token(role, org, person=person, purposes=purposes, professional=professional)
    async with fed.client(app, token, purpose) as c:
        body = {"query": query, "variables": variables}
        if operation:
            body["operationName"] = operation
        return await c.post("/graphql", json=body)


def spellings(value: str) -> list[str]:
    """The value as it may appear in response bytes: UTF-8, or JSON \\u escapes."""
    return [value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]]


def leaked(raw: str, value: str) -> bool:
    return any(s in raw for s in spellings(value))


# The errors an attack may meet once executed: denials. Anything else (a validation error,
# a bad input, an internal error) means the attack no longer tests the policy.
DENIAL_CODES = frozenset({"FORBIDDEN_FIELD", "FORBIDDEN"})


# A mutation may also be refused for its input (a made-up visit, a region not the caller's).
MUTATION_REFUSALS = DENIAL_CODES | {"BAD_USER_INPUT"}


def assert_no_leak(
    response,
    context,
    *,
    status: int = 200,
    masked_due: bool = False,
    refusals: frozenset[str] = DENIAL_CODES,
) -> None:
    """Nothing of the victim in the response bytes: no plain value, and no masked one unless
    the caller is due masked values (``masked_due``). With ``status`` 200 (the default) the
    request must also have executed and met nothing but ``refusals`` (denials for a read)."""
    assert response.status_code == status, (context, response.status_code, response.text[:300])
    raw = response.content.decode()
    for value in secrets():
        assert not leaked(raw, value), f"{context}: leaked {value!r}"
    if not masked_due:
        for value in masked_secrets():
            assert not leaked(raw, value), f"{context}: leaked the masked {value!r}"
    if status == 200:
        body = response.json()
        errors = body.get("errors") or ()
        codes = {(e.get("extensions") or {}).get("code") for e in errors}
        # Executed: only denials stopped it (a denied non-null root field nulls all the data).
        assert codes <= refusals, f"{context}: not executed, or not only refused: {errors}"
        assert body.get("data") is not None or errors, f"{context}: neither data nor errors"


GRANT = """mutation($k: String!, $g: String!, $until: DateTime!) { grantConsent(
    idempotencyKey: $k, input: {grantee: $g, dataClasses: [VISIT, DIAGNOSIS],
    purpose: TREATMENT, validUntil: $until}) { consent { consentId status } } }"""
REVOKE = """mutation($k: String!, $c: ID!) { revokeConsent(idempotencyKey: $k, consentId: $c) {
    consent { status } } }"""
READ = """query($id: ID!) { person(personId: $id) { name cloudRecord {
    visits { nodes { diagnosisText } } testResults { nodes { findings } } } } }"""


async def emergency_patients(fed, count: int = 5) -> list[str]:
    """Persons insured and treated in Shandong, whom a Zhejiang clinician has no relation to."""
    seq = itertools.count(900)
    others = []
    for _ in range(count):
        other = await fed.add_person(
            make_id_number("370102", seq=next(seq)),
            "急诊患者",
            source="bureau-370000",
            region="370102",
        )
        await fed.add_visits(
            other,
            1,
            source="bureau-370000",
            institution="H37010200003",
            insured="370102",
            text="急诊诊断",
        )
        others.append(other)
    return others
