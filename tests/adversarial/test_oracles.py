"""No existence oracles: a caller with no relation to a person gets the same answer, the same
errors, the same page info and the same SQL statements for a person who exists (the victim,
with several rows in every list) as for one no bureau knows, through every entry point that
names a person: ``person(idNumber:)``, ``person(personId:)``, ``_entities`` (Person and
CloudRecord), the person-keyed top-level lists (with ``first: 1``, where ``hasNextPage``
would count hidden rows, and after a cursor), and ``me``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import event

from connectors.sql.models import platform
from gateway.app import build_services
from schema.pagination import encode_cursor
from security.identity.roles import DEFAULT_PURPOSES, Role
from tests.support.adversarial import ATTACKERS, DEEP, NAME, PERSON_FIELDS, VICTIM_ID, secrets
from tests.support.federation import make_id_number

JILIN = "H22010200005"  # where the victim's cross-province stays were
NOBODY_ID = make_id_number("370102", seq=778)  # a valid ID number no bureau knows
LATER = encode_cursor((datetime(2030, 1, 1), "Z"))
PAGED = """pageInfo { hasNextPage endCursor } edges { cursor }"""

ENTRY_POINTS: dict[str, tuple[str, Any]] = {
    "person by id number": (
        f"query($n: String!) {{ person(idNumber: $n) {{ __typename {PERSON_FIELDS} {DEEP} }} }}",
        lambda ref, idn: {"n": idn},
    ),
    "person by personId": (
        f"query($id: ID!) {{ person(personId: $id) {{ __typename {PERSON_FIELDS} {DEEP} }} }}",
        lambda ref, idn: {"id": ref},
    ),
    "entities": (
        f"""query($r: [_Any!]!) {{ _entities(representations: $r) {{ __typename
        ... on Person {{ {PERSON_FIELDS} }} ... on CloudRecord {{ personId
        visits(first: 1) {{ {PAGED} }} testResults(first: 1) {{ {PAGED} }}
        settlements(first: 1) {{ {PAGED} }} filings(first: 1) {{ {PAGED} }} }} }} }}""",
        lambda ref, idn: {
            "r": [
                {"__typename": "Person", "personId": ref},
                {"__typename": "CloudRecord", "personId": ref},
            ]
        },
    ),
    "top-level lists": (
        f"""query($id: ID!) {{
        testResults(personId: $id, first: 1) {{ {PAGED} nodes {{ resultId findings }} }}
        filings(personId: $id, first: 1) {{ {PAGED} nodes {{ filingId name }} }}
        settlements(filter: {{personId: $id}}, first: 1) {{ {PAGED} nodes {{ total }} }} }}""",
        lambda ref, idn: {"id": ref},
    ),
    "lists after a cursor": (
        f"""query($id: ID!, $after: String) {{
        testResults(personId: $id, first: 1, after: $after) {{ {PAGED} }}
        filings(personId: $id, first: 1, after: $after) {{ {PAGED} }}
        settlements(filter: {{personId: $id}}, first: 1, after: $after) {{ {PAGED} }} }}""",
        lambda ref, idn: {"id": ref, "after": LATER},
    ),
}
# Everyone but the patient (who may only name themselves, and is refused alike).
STRANGERS = [a for a in ATTACKERS if a[0] != "patient"]


@pytest.fixture
async def victim(world):
    """The adversarial world, with more than one row in every list of the victim's."""
    fed, ref, _app = world
    await fed.add_result(ref, source="hospital-h37010200003", reported_at=datetime(2024, 5, 1))
    await fed.add_cross_settlement(
        ref, when=datetime(2024, 4, 1), insured="370102", treated="220102", institution=JILIN
    )
    await fed.add_cross_settlement(
        ref, when=datetime(2024, 4, 9), insured="370102", treated="220102", institution=JILIN
    )
    rows = []
    for n in range(2):
        filing_id = f"FV{n:08d}"
        rows.append(
            dict(
                filing_id=filing_id,
                person_ref=ref,
                id_number_bidx=fed.indexer.id_number(VICTIM_ID),
                name_enc=fed.enc("platform", "filings", "name_enc", filing_id, NAME),
                insuplc_admdvs="370102",
                mdtrtarea_admvs="220000",
                category="RESIDENT_ELSEWHERE",
                channel="APP",
                status="ACTIVE",
                filed_at=datetime(2024, 3, 1 + n),
                valid_from=date(2024, 3, 1),
                valid_until=date.today() + timedelta(days=30),
            )
        )
    await fed.insert("platform", platform.Filing, rows)
    return fed, ref


TIMER_TABLES = ("audit_", "witness_checkpoints", "records_log_head", "records_log_checkpoints")


class Counted:
    """Statements one request runs: on every source, and on the gateway's own database
    (consents, break-glass), leaving out the audit log's own tables: its checkpoints and their
    witnesses' copies are written on a timer, whenever it fires. The records log's timer reads
    its head and checkpoints the same way; its leaves (what a read's integrity looks up) count."""

    def __init__(self, services) -> None:
        self.sources = services.registry.statement_counter()
        self.gateway = 0

        def seen(_conn, _cursor, statement, *_rest) -> None:
            if not any(table in statement for table in TIMER_TABLES):
                self.gateway += 1

        event.listen(services.gateway_engine.sync_engine, "before_cursor_execute", seen)

    def reset(self) -> None:
        self.sources.reset()
        self.gateway = 0

    @property
    def count(self) -> tuple[int, int]:
        return self.sources.count, self.gateway


async def _ask(fed, app, counted, token, purpose, query, variables):
    counted.reset()
    async with fed.client(app, token, purpose) as c:
        response = await c.post("/graphql", json={"query": query, "variables": variables})
    return response, counted.count


def _answer(response) -> dict:
    body = response.json()
    body.pop("extensions", None)  # break-glass notices and the like, compared apart
    return body


@pytest.mark.parametrize("role,org,purposes", STRANGERS, ids=[a[0] for a in STRANGERS])
async def test_a_stranger_cannot_tell_a_person_who_exists_from_one_who_does_not(
    victim, role, org, purposes
):
    fed, ref = victim
    nobody = fed.indexer.person_ref(NOBODY_ID)
    services = build_services(fed.settings)
    counted = Counted(services)
    app = fed.app(services)
    token = fed.token(role, org, purposes=purposes)
    purpose = purposes[0] if purposes else min(p.value for p in DEFAULT_PURPOSES[Role(role)])
    for name, (query, variables) in ENTRY_POINTS.items():
        there, there_count = await _ask(
            fed, app, counted, token, purpose, query, variables(ref, VICTIM_ID)
        )
        absent, absent_count = await _ask(
            fed, app, counted, token, purpose, query, variables(nobody, NOBODY_ID)
        )
        assert there.status_code == absent.status_code == 200, (name, there.text[:300])
        assert _answer(there) == _answer(absent), f"{role} tells them apart via {name}"
        assert there_count == absent_count, f"{role}: statements differ via {name}"
        assert there_count[0] > 0, f"{name}: the counter saw no statement"
        raw = there.content.decode()
        assert not any(value in raw for value in secrets())


async def test_me_runs_the_same_statements_for_a_known_and_an_unknown_patient(victim):
    fed, ref = victim
    nobody = fed.indexer.person_ref(NOBODY_ID)
    services = build_services(fed.settings)
    counted = Counted(services)
    app = fed.app(services)
    # Nothing nested under the rows: the patient reads their own rows, and rows read lead
    # to more statements (institutions, items) than rows that are not there.
    query = f"""{{ me {{ __typename {PERSON_FIELDS} cloudRecord {{ visits(first: 1) {{ {PAGED} }}
        testResults(first: 1) {{ {PAGED} }} settlements(first: 1) {{ {PAGED} }} }} }} }}"""
    answers = {}
    for who in (ref, nobody):
        token = fed.token("patient", "370102", person=who)
        answers[who] = await _ask(fed, app, counted, token, None, query, {})
    (there, there_count), (absent, absent_count) = answers[ref], answers[nobody]
    assert there_count == absent_count
    # A person no bureau knows is still a Person, with nothing in it.
    assert absent.json()["data"]["me"]["__typename"] == "Person"
    assert absent.json()["data"]["me"]["name"] is None
    # The positive control: the comparison does see a difference where the caller may read.
    assert there.json()["data"]["me"]["name"] == NAME
    assert _answer(there) != _answer(absent)


async def test_a_related_caller_does_tell_them_apart(victim):
    """The positive control for the strangers' test: a caller the policy lets read the
    victim gets a different answer for a person who does not exist, through the same
    comparison."""
    fed, ref = victim
    nobody = fed.indexer.person_ref(NOBODY_ID)
    services = build_services(fed.settings)
    counted = Counted(services)
    app = fed.app(services)
    token = fed.token("insurance_agency", "370100")  # the victim's own region
    query, variables = ENTRY_POINTS["person by personId"]
    there, _ = await _ask(fed, app, counted, token, "FUND_SUPERVISION", query, variables(ref, ""))
    absent, _ = await _ask(
        fed, app, counted, token, "FUND_SUPERVISION", query, variables(nobody, "")
    )
    assert _answer(there) != _answer(absent)
    assert there.json()["data"]["person"]["personId"] == ref


async def test_has_next_page_counts_only_rows_the_caller_may_see(victim):
    """The victim's region sees their settlements and filings: first: 1 of two says there
    is a next page. A stranger sees none: no next page, whether or not there are rows."""
    fed, ref = victim
    app = fed.app()
    query, variables = ENTRY_POINTS["top-level lists"]
    agency = fed.token("insurance_agency", "370100")
    async with fed.client(app, agency, "SETTLEMENT") as c:
        seen = orjson.loads(
            (
                await c.post("/graphql", json={"query": query, "variables": variables(ref, "")})
            ).content
        )["data"]
    assert seen["settlements"]["pageInfo"]["hasNextPage"] is True
    assert seen["filings"]["pageInfo"]["hasNextPage"] is True
    stranger = fed.token("insurance_agency", "330100")
    async with fed.client(app, stranger, "SETTLEMENT") as c:
        hidden = orjson.loads(
            (
                await c.post("/graphql", json={"query": query, "variables": variables(ref, "")})
            ).content
        )["data"]
    for name in ("testResults", "filings", "settlements"):
        assert hidden[name] == {
            "pageInfo": {"hasNextPage": False, "endCursor": None},
            "edges": [],
            "nodes": [],
        }, name
