"""The statistics API over a small demo: each grade answers as the policy file says."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import tomllib
from itertools import combinations

import pytest

from gateway.app import build_services
from security.policy.rules import POLICY_FILE, parse
from tests.support.audit import logged
from tests.support.disclosure import disclosed
from tests.support.federation import gql
from tests.support.statistics import watch

ROWS = (
    "rows { key { dimension value } totalOver suppressed "
    "measures { name value low high exact noiseScale } }"
)


def _measure(row, name):
    return next((m for m in row["measures"] if m["name"] == name), None)


def _key(row):
    return tuple(k["value"] for k in row["key"])


async def _ask(fed, app, role, org, purpose, query, variables=None):
    async with fed.client(app, fed.token(role, org), purpose) as client:
        return await gql(client, query, variables)


def _sqlite(fed, source):
    return sqlite3.connect(fed.data_dir / "sources" / f"{source}.db")


async def test_an_agency_gets_exact_figures_of_its_own_region(demo):
    app = demo.app()
    body = await _ask(
        demo,
        app,
        "insurance_agency",
        "330000",
        "SETTLEMENT",
        """{ settlementStatistics(groupBy: [CROSS_PROVINCE], filter: {region: "330000"}) {
             grade sources """
        + ROWS
        + " } }",
    )
    answer = body["data"]["settlementStatistics"]
    assert answer["grade"] == "EXACT"
    rows = {_key(r): r for r in answer["rows"]}
    with _sqlite(demo, "bureau-330000") as conn:
        count, total = conn.execute(
            "SELECT count(*), sum(total_fen) FROM settlements WHERE insuplc_admdvs LIKE '33%'"
            " OR mdtrtarea_admvs LIKE '33%'"
        ).fetchone()
    assert _measure(rows[("false",)], "settlements")["value"] == count
    assert _measure(rows[("false",)], "totalCost")["value"] == pytest.approx(total / 100)
    assert rows[(None,)]["totalOver"] == ["CROSS_PROVINCE"]


async def test_cross_province_fund_share_has_the_shape_of_seed_002(demo):
    """The national platform's own rows, exact: the fund pays about 59 % of cross-province
    care (seed 002: 84.22 of 142.67 bn yuan, 59.0 %)."""
    app = demo.app()
    body = await _ask(
        demo,
        app,
        "settlement_center",
        "100000",
        "SETTLEMENT",
        "{ settlementStatistics(groupBy: [CROSS_PROVINCE]) { grade sources " + ROWS + " } }",
    )
    answer = body["data"]["settlementStatistics"]
    assert answer["grade"] == "EXACT" and answer["sources"] == ["platform"]
    (cross,) = [r for r in answer["rows"] if _key(r) == ("true",)]
    share = _measure(cross, "fundShare")["value"]
    assert 0.54 < share < 0.64
    with _sqlite(demo, "platform") as conn:
        fund, total = conn.execute(
            "SELECT sum(fund_pay_fen), sum(total_fen) FROM cross_settlements"
        ).fetchone()
    assert share == pytest.approx(fund / total, abs=1e-6)


def _policy_with_small_suppressed_grade():
    raw = tomllib.loads(POLICY_FILE.read_text(encoding="utf-8"))
    raw["grades"] = [
        {
            "roles": ["insurance_agency"],
            "purposes": ["SETTLEMENT"],
            "grade": "SUPPRESSED",
            "k": 10,
            "dimensions": ["INSURED_PROVINCE", "TREATMENT_PROVINCE", "MEDICAL_TYPE"],
        }
    ]
    return parse(raw)


SUPPRESSED = (
    "query($g: [SettlementDimension!]!, $f: StatisticsFilter) { settlementStatistics(groupBy: $g,"
    " filter: $f) { grade k suppressedCells " + ROWS + " } }"
)
DIMS = ("INSURED_PROVINCE", "TREATMENT_PROVINCE", "MEDICAL_TYPE")


async def test_suppressed_cells_cannot_be_recovered_from_any_total(demo):
    services = dataclasses.replace(
        build_services(demo.settings), policy=_policy_with_small_suppressed_grade()
    )
    app = demo.app(services)
    body = await _ask(
        demo, app, "insurance_agency", "330000", "SETTLEMENT", SUPPRESSED, {"g": list(DIMS)}
    )
    answer = body["data"]["settlementStatistics"]
    assert answer["grade"] == "SUPPRESSED" and answer["k"] == 10
    published, hidden, finest = {}, set(), set()
    for row in answer["rows"]:
        level = tuple(d for d in DIMS if d not in row["totalOver"])
        key = tuple(k["value"] for k in row["key"] if k["dimension"] in level)
        if level == DIMS:
            finest.add(key)
        if row["suppressed"]:
            assert row["measures"] == []
            hidden.add((level, key))
        else:
            published[(level, key)] = _measure(row, "settlements")["value"]
            assert _measure(row, "persons")["low"] >= 10
    assert answer["suppressedCells"] == len(hidden) > 0
    assert not disclosed(DIMS, published, hidden, finest)
    # The small cells are really there: the hidden finest cells hold fewer than 10 persons
    # in at least one case (computed from the rows, not from the answer).
    with _sqlite(demo, "platform") as conn:
        small = conn.execute(
            "SELECT count(*) FROM (SELECT count(DISTINCT person_ref) n FROM cross_settlements "
            "GROUP BY substr(insuplc_admdvs,1,2), substr(mdtrtarea_admvs,1,2), med_type) "
            "WHERE n < 10"
        ).fetchone()[0]
    assert small > 0

    # Every other question at this grade is a view of the same pattern: a cell hidden in
    # one answer is hidden in all (no linked-table attack by combining queries).
    for size in (1, 2):
        for group in combinations(DIMS, size):
            view = await _ask(
                demo,
                app,
                "insurance_agency",
                "330000",
                "SETTLEMENT",
                SUPPRESSED,
                {"g": list(group)},
            )
            for row in view["data"]["settlementStatistics"]["rows"]:
                level = tuple(d for d in DIMS if d in group and d not in row["totalOver"])
                key = tuple(k["value"] for k in row["key"] if k["dimension"] in level)
                assert row["suppressed"] == ((level, key) in hidden)
    sliced = await _ask(
        demo,
        app,
        "insurance_agency",
        "330000",
        "SETTLEMENT",
        SUPPRESSED,
        {
            "g": ["MEDICAL_TYPE"],
            "f": {"equals": [{"dimension": "INSURED_PROVINCE", "value": "220000"}]},
        },
    )
    for row in sliced["data"]["settlementStatistics"]["rows"]:
        level = ("INSURED_PROVINCE", *(("MEDICAL_TYPE",) if not row["totalOver"] else ()))
        key = ("220000", *(k["value"] for k in row["key"] if not row["totalOver"]))
        assert row["suppressed"] == ((level, key) in hidden)


async def test_a_grade_refuses_what_it_does_not_open(demo):
    app = demo.app()
    auditor = await _ask(
        demo,
        app,
        "auditor",
        "330000",
        "AUDIT",
        "{ settlementStatistics(groupBy: [MONTH]) { grade } }",
    )
    assert auditor["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    insurer = await _ask(
        demo,
        app,
        "commercial_insurer",
        "110000",
        "UNDERWRITING",
        "{ settlementStatistics(groupBy: [INSTITUTION_LEVEL]) { grade } }",
    )
    error = insurer["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN" and "INSTITUTION_LEVEL" in error["message"]
    recognition = await _ask(
        demo,
        app,
        "commercial_insurer",
        "110000",
        "UNDERWRITING",
        "{ recognitionStatistics(groupBy: [ITEM]) { grade } }",
    )
    assert recognition["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Positive control: the same insurer, a dimension its grade opens.
    ok = await _ask(
        demo,
        app,
        "commercial_insurer",
        "110000",
        "UNDERWRITING",
        "{ settlementStatistics(groupBy: [CROSS_PROVINCE]) { grade } }",
    )
    assert ok["data"]["settlementStatistics"]["grade"] == "DP"


DP = (
    "query($e: Float) { settlementStatistics(groupBy: [CROSS_PROVINCE], epsilon: $e) { grade"
    " epsilon privacy { charged reused spent remaining budget } " + ROWS + " } }"
)


async def test_dp_answers_say_their_noise_and_the_same_question_is_not_recharged(demo):
    app = demo.app()
    first = (await _ask(demo, app, "researcher", "110000", "RESEARCH", DP, {"e": 1.0}))["data"]
    answer = first["settlementStatistics"]
    assert answer["grade"] == "DP" and answer["privacy"]["charged"] == pytest.approx(1.0)
    assert not answer["privacy"]["reused"]
    for row in answer["rows"]:
        count = _measure(row, "settlements")
        assert count["noiseScale"] > 0 and not count["exact"]
        assert count["low"] < count["value"] < count["high"]
    again = (await _ask(demo, app, "researcher", "110000", "RESEARCH", DP, {"e": 1.0}))["data"]
    assert again["settlementStatistics"]["rows"] == answer["rows"]
    assert again["settlementStatistics"]["privacy"]["reused"]
    assert again["settlementStatistics"]["privacy"]["charged"] == 0
    budget = await _ask(
        demo,
        app,
        "researcher",
        "110000",
        "RESEARCH",
        "{ privacyBudget { partner spent remaining budget questions period renewsAt } }",
    )
    left = budget["data"]["privacyBudget"]
    assert left["partner"] == "researcher:110000" and left["questions"] == 1
    assert left["spent"] == pytest.approx(1.0) and left["remaining"] == pytest.approx(9.0)
    # Another partner has a budget of its own, and its own noise.
    other = (await _ask(demo, app, "researcher", "120000", "RESEARCH", DP, {"e": 1.0}))["data"]
    assert other["settlementStatistics"]["privacy"]["spent"] == pytest.approx(1.0)
    events = await logged(demo)
    spends = [e for e in events if e["kind"] == "PRIVACY_SPEND"]
    assert [e["privacySpend"]["partner"] for e in spends] == [
        "researcher:110000",
        "researcher:120000",
    ]
    assert spends[0]["privacySpend"]["epsilonMicro"] == 1_000_000
    asked = [e for e in events if e.get("openData")]
    assert len(asked) >= 3 and asked[0]["openData"][0]["grade"] == "DP"


async def test_over_budget_is_refused_and_nothing_is_released(demo):
    """The insurer's grade: 3 epsilon a month, at most 1 a question."""
    app = demo.app()

    async def ask(query):
        return await _ask(demo, app, "commercial_insurer", "110000", "UNDERWRITING", query)

    same = "{ settlementStatistics(groupBy: [MEDICAL_TYPE], epsilon: 1.0) { privacy { spent } } }"
    spent = [
        (await ask(q))["data"]
        for q in (
            same,
            same,  # the same question: answered again from the ledger, not charged
            "{ filingStatistics(groupBy: [CATEGORY], epsilon: 1.0) { privacy { spent } } }",
            "{ settlementStatistics(groupBy: [CROSS_PROVINCE], epsilon: 1.0) "
            "{ privacy { spent } } }",
        )
    ]
    assert [next(iter(d.values()))["privacy"]["spent"] for d in spent] == [1.0, 1.0, 2.0, 3.0]
    refused = await ask(
        "{ filingStatistics(groupBy: [INSURED_PROVINCE], epsilon: 0.5) { rows { key { value } } } }"
    )
    assert refused["data"] is None
    error = refused["errors"][0]
    assert error["extensions"]["code"] == "PRIVACY_BUDGET_EXHAUSTED"
    assert error["extensions"]["budget"] == 3.0 and "renews" in error["message"]
    left = (await ask("{ privacyBudget { spent remaining questions } }"))["data"]["privacyBudget"]
    assert left == {"spent": 3.0, "remaining": 0.0, "questions": 3}


async def test_researchers_still_read_no_personal_row(demo):
    app = demo.app()
    with _sqlite(demo, "bureau-330000") as conn:
        (ref,) = conn.execute("SELECT person_ref FROM persons LIMIT 1").fetchone()
    body = await _ask(
        demo,
        app,
        "researcher",
        "110000",
        "RESEARCH",
        "query($id: ID!) { person(personId: $id) { name gender } }",
        {"id": ref},
    )
    person = (body.get("data") or {}).get("person")
    assert person is None or (person["name"] is None and person["gender"] is None)
    assert any(e["extensions"]["code"] == "FORBIDDEN_FIELD" for e in body["errors"])


async def test_concurrent_dp_questions_never_overspend_through_the_api(demo):
    """Six different questions at 2 epsilon each, at once, against a budget of 10."""
    app = demo.app()
    queries = [
        "{ filingStatistics(groupBy: [" + d + "], epsilon: 2.0) { privacy { charged } } }"
        for d in (
            "CATEGORY",
            "CHANNEL",
            "STATUS",
            "INSURED_PROVINCE",
            "DESTINATION_PROVINCE",
            "MONTH",
        )
    ]
    queries[-1] = queries[-1].replace(
        "epsilon: 2.0", 'epsilon: 2.0, filter: {monthFrom: "2020-01", monthTo: "2020-06"}'
    )
    bodies = await asyncio.gather(
        *(_ask(demo, app, "researcher", "130000", "RESEARCH", q) for q in queries)
    )
    answered = [b for b in bodies if b.get("data")]
    refused = [b for b in bodies if not b.get("data")]
    assert len(answered) == 5 and len(refused) == 1
    assert refused[0]["errors"][0]["extensions"]["code"] == "PRIVACY_BUDGET_EXHAUSTED"
    left = await _ask(demo, app, "researcher", "130000", "RESEARCH", "{ privacyBudget { spent } }")
    assert left["data"]["privacyBudget"]["spent"] == 10.0


async def test_fewer_measures_get_more_of_the_epsilon(demo):
    app = demo.app()
    query = (
        "query($m: [String!]) { settlementStatistics(groupBy: [CROSS_PROVINCE], epsilon: 1.0, "
        "measures: $m) { privacy { charged } rows { measures { name noiseScale } } } }"
    )
    one = await _ask(demo, app, "researcher", "140000", "RESEARCH", query, {"m": ["settlements"]})
    every = await _ask(demo, app, "researcher", "140000", "RESEARCH", query, {"m": None})
    (row, *_) = one["data"]["settlementStatistics"]["rows"]
    assert [m["name"] for m in row["measures"]] == ["settlements"]
    alone = row["measures"][0]["noiseScale"]
    shared = _measure(every["data"]["settlementStatistics"]["rows"][0], "settlements")
    # Five measures released (count, persons, three sums): each gets a fifth of epsilon.
    assert shared["noiseScale"] == pytest.approx(5 * alone)
    # Two different questions: both charged in full.
    assert every["data"]["settlementStatistics"]["privacy"]["charged"] == pytest.approx(1.0)
    bad = await _ask(demo, app, "researcher", "140000", "RESEARCH", query, {"m": ["weather"]})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_concurrent_suppressed_questions_compute_the_grade_cube_once(demo):
    services = build_services(demo.settings)
    seen = watch(services.registry)
    app = demo.app(services)
    groups = ("MEDICAL_TYPE", "MONTH", "INSURED_PROVINCE", "TREATMENT_PROVINCE")
    bodies = await asyncio.gather(
        *(
            _ask(demo, app, "insurance_agency", "330000", "SETTLEMENT", SUPPRESSED, {"g": [g]})
            for g in groups
        )
    )
    assert [b["data"]["settlementStatistics"]["grade"] for b in bodies] == ["SUPPRESSED"] * 4
    cubes = {
        name: sum(1 for sql in statements if "m_count" in sql)
        for name, statements in seen.statements.items()
    }
    # Four questions, one cube: one statement at each bureau and at the platform.
    assert {n: c for n, c in cubes.items() if c} == {
        "bureau-330000": 1,
        "bureau-370000": 1,
        "bureau-220000": 1,
        "platform": 1,
    }


async def test_officers_see_the_partners_budgets_within_their_scope(demo):
    """privacyBudgets: the ledger as the console shows it, to auditors only, and only the
    partners of their scope (a regional auditor its region's, a national one every one)."""
    app = demo.app()
    await _ask(demo, app, "researcher", "110000", "RESEARCH", DP, {"e": 1.0})
    await _ask(demo, app, "researcher", "330100", "RESEARCH", DP, {"e": 0.5})
    query = "{ privacyBudgets { partner spent remaining budget questions renewsAt } }"
    national = await _ask(demo, app, "auditor", "100000", "AUDIT", query)
    assert "errors" not in national, national
    budgets = {b["partner"]: b for b in national["data"]["privacyBudgets"]}
    assert set(budgets) == {"researcher:110000", "researcher:330100"}
    assert budgets["researcher:110000"]["spent"] == pytest.approx(1.0)
    assert budgets["researcher:330100"]["remaining"] == pytest.approx(9.5)
    assert budgets["researcher:330100"]["questions"] == 1
    assert budgets["researcher:330100"]["renewsAt"].endswith("+08:00")
    regional = await _ask(demo, app, "auditor", "330000", "AUDIT", query)
    assert [b["partner"] for b in regional["data"]["privacyBudgets"]] == ["researcher:330100"]
    # A partner reads its own budget (privacyBudget), never the others'.
    refused = await _ask(demo, app, "researcher", "110000", "RESEARCH", query)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
