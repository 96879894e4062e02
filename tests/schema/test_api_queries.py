"""The read API: pagination, recognition rules, patients' own-record rule, N+1 bound."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.app import build_services
from tests.support.federation import RECENT_VISIT, Federation, gql, make_id_number

CLOUD_RECORD = """query($id: ID!) { person(personId: $id) { name cloudRecord {
  enrollments(first: 100) { nodes { poolingRegion status } }
  visits(first: 100) { nodes { visitId diagnosisText institution { name level }
      prescriptions { prescriptionId items { drugName } } } }
  settlements(first: 100) { nodes { settlementId total fundPay } }
  testResults(first: 100) { nodes { itemCode value recognition { recognized reason } } }
  filings(first: 100) { nodes { filingId } }
  drugPurchases(first: 100) { nodes { purchaseId } }
} } }"""


@pytest.fixture
async def fed(data_dir):
    return await Federation(data_dir).setup()


async def _clinician(fed, app):
    token = fed.token("clinician", "H33010600001")
    return fed.client(app, token, "TREATMENT")


async def test_pages_walk_every_visit_once_in_order(fed):
    ref = await fed.add_person(make_id_number(), "李四")
    ids = await fed.add_visits(ref, 25, with_prescriptions=False)
    app = fed.app()
    seen: list[str] = []
    after = None
    async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
        for _ in range(5):
            body = await gql(
                c,
                """query($after: String) { me { cloudRecord {
                visits(first: 10, after: $after) { nodes { visitId beginDate }
                  pageInfo { hasNextPage endCursor } } } } }""",
                {"after": after},
            )
            page = body["data"]["me"]["cloudRecord"]["visits"]
            seen += [n["visitId"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(ids) and len(seen) == 25
    assert len(set(seen)) == 25


@pytest.mark.parametrize("first", [0, 101, -1])
async def test_page_size_is_bounded(fed, first):
    app = fed.app()
    async with await _clinician(fed, app) as c:
        body = await gql(
            c, "query($f: Int) { institutions(first: $f) { nodes { code } } }", {"f": first}
        )
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "between 1 and 100" in error["message"]


async def test_largest_page_passes_and_bad_cursor_is_rejected(fed):
    app = fed.app()
    async with await _clinician(fed, app) as c:
        ok = await gql(c, "{ institutions(first: 100) { nodes { code } } }")
        bad = await gql(c, '{ institutions(after: "bm90LWEtY3Vyc29y") { nodes { code } } }')
    assert len(ok["data"]["institutions"]["nodes"]) == 7
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_settlements_merge_bureaus_and_platform_across_pages(fed):
    ref = await fed.add_person(make_id_number(), "王五")
    times = [datetime(2024, 3, d, 12) for d in range(1, 8)]
    for when in times:
        await fed.add_cross_settlement(ref, when=when)
    app = fed.app()
    token = fed.token("settlement_center", "100000")
    async with fed.client(app, token, "SETTLEMENT") as c:
        first = await gql(
            c,
            """{ settlements(first: 4, filter: {crossProvince: true,
            settledFrom: "2024-03-01T00:00:00", settledBefore: "2024-04-01T00:00:00"}) {
            nodes { settledAt crossProvince } pageInfo { hasNextPage endCursor } } }""",
        )
        page = first["data"]["settlements"]
        second = await gql(
            c,
            """query($a: String) { settlements(first: 4, after: $a,
            filter: {crossProvince: true}) { nodes { settledAt } pageInfo { hasNextPage } } }""",
            {"a": page["pageInfo"]["endCursor"]},
        )
    got = [n["settledAt"] for n in page["nodes"]] + [
        n["settledAt"] for n in second["data"]["settlements"]["nodes"]
    ]
    # stored naive in China Standard Time, answered with its offset (docs/api.md "Times")
    assert got == [f"{t.isoformat()}+08:00" for t in sorted(times, reverse=True)]
    assert second["data"]["settlements"]["pageInfo"]["hasNextPage"] is False


async def test_bad_region_filter_lists_every_problem(fed):
    app = fed.app()
    async with await _clinician(fed, app) as c:
        body = await gql(
            c,
            """{ settlements(filter: {insuredRegion: "99", treatmentRegion:
            "330", institutionCode: "X1"}) { nodes { settlementId } } }""",
        )
    problems = body["errors"][0]["extensions"]["problems"]
    assert {tuple(p["path"]) for p in problems} == {
        ("insuredRegion",),
        ("treatmentRegion",),
        ("filter", "institutionCode"),
    }


async def test_recognition_rules(fed):
    ref = await fed.add_person(make_id_number(), "赵六")
    now = datetime.now()
    cases = {
        await fed.add_result(ref, reported_at=now - timedelta(days=2)): "RECOGNIZED",
        await fed.add_result(ref, reported_at=now - timedelta(days=30)): "EXPIRED",
        await fed.add_result(
            ref, item_code="14682-9", reported_at=now - timedelta(days=1)
        ): "NOT_IN_CATALOGUE",
        await fed.add_result(
            ref, source="hospital-h37020200004", reported_at=now - timedelta(days=1)
        ): "INSTITUTION_LEVEL_TOO_LOW",
        await fed.add_result(
            ref,
            category="IMAGING",
            item_code="CT",
            modality="CT",
            reported_at=now - timedelta(days=100),
        ): "RECOGNIZED",
    }
    app = fed.app()
    async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
        body = await gql(
            c,
            """query($id: ID!) { testResults(personId: $id, first: 10) {
            nodes { resultId recognition { recognized reason validUntil } } } }""",
            {"id": ref},
        )
    got = {n["resultId"]: n["recognition"] for n in body["data"]["testResults"]["nodes"]}
    assert {rid: r["reason"] for rid, r in got.items()} == cases
    assert all(r["recognized"] == (r["reason"] == "RECOGNIZED") for r in got.values())


async def test_patient_reads_only_own_person(fed):
    mine = await fed.add_person(make_id_number(seq=101), "钱七")
    other = await fed.add_person(make_id_number(seq=103), "孙八")
    app = fed.app()
    async with fed.client(app, fed.token("patient", "330106", person=mine)) as c:
        denied = await gql(c, "query($id: ID!) { person(personId: $id) { name } }", {"id": other})
        results = await gql(
            c,
            "query($id: ID!) { testResults(personId: $id) { nodes { resultId } } }",
            {"id": other},
        )
    assert denied["data"]["person"] is None
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert results["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "孙八" not in str(denied)


async def test_person_by_id_number_joins_two_provinces(fed):
    idn = make_id_number("220102", seq=55)
    ref = await fed.add_person(idn, "周九", source="bureau-220000", region="220102", status="ENDED")
    assert ref == await fed.add_person(idn, "周九", source="bureau-330000", region="330106")
    # A recent visit at the clinician's hospital, recorded by the bureau: a treating relation.
    await fed.add_visits(ref, 1, with_prescriptions=False, begin=RECENT_VISIT)
    app = fed.app()
    async with await _clinician(fed, app) as c:
        body = await gql(
            c,
            """query($n: String!) { person(idNumber: $n) { personId
            insuredRegion insuredRegions cloudRecord { enrollments { nodes { poolingRegion
            status } } } } }""",
            {"n": idn},
        )
    person = body["data"]["person"]
    assert person["personId"] == ref
    assert person["insuredRegion"] == "330106"
    assert person["insuredRegions"] == ["220102", "330106"]
    assert {
        (e["poolingRegion"], e["status"]) for e in person["cloudRecord"]["enrollments"]["nodes"]
    } == {("220102", "ENDED"), ("330106", "ACTIVE")}


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "0" <= c <= "9" or c == "X" else c for c in text)


@pytest.mark.parametrize(
    "written",
    [full_width, lambda n: f" {n[:6]} {n[6:14]} {n[14:]} ", lambda n: n.lower()],
    ids=["full-width", "spaced", "lower-case-x"],
)
async def test_an_id_number_written_another_way_finds_the_same_person(fed, written):
    idn = make_id_number("330106", seq=77)
    assert idn.endswith("X") or idn[-1].isdigit()
    ref = await fed.add_person(idn, "吴十", source="bureau-330000", region="330106")
    await fed.add_visits(ref, 1, with_prescriptions=False, begin=RECENT_VISIT)  # treating
    app = fed.app()
    query = "query($n: String!) { person(idNumber: $n) { personId } }"
    async with await _clinician(fed, app) as c:
        same = await gql(c, query, {"n": written(idn)})
        plain = await gql(c, query, {"n": idn})
        # Another script's digits are not ASCII digits after NFKC: refused, not looked up.
        arabic = await gql(c, query, {"n": "".join(chr(0x660 + int(d)) for d in idn[:17]) + "0"})
    assert plain["data"]["person"]["personId"] == ref
    assert same["data"]["person"]["personId"] == ref
    assert arabic["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def _statements_for(fed, ref: str) -> int:
    services = build_services(fed.settings)
    counter = services.registry.statement_counter()
    app = fed.app(services)
    async with fed.client(app, fed.token("patient", "330106", person=ref)) as c:
        body = await gql(c, CLOUD_RECORD, {"id": ref})
    assert "errors" not in body, body["errors"]
    await services.registry.dispose()
    return counter.count


async def test_statement_count_does_not_grow_with_rows(fed):
    small = await fed.add_person(make_id_number(seq=201), "小明")
    large = await fed.add_person(make_id_number(seq=203), "大明")
    for ref, n in ((small, 5), (large, 500)):
        await fed.add_visits(ref, n)
        await fed.add_visits(ref, n, source="bureau-370000", institution="H37010200003")
        for i in range(min(n, 100)):
            await fed.add_cross_settlement(ref, when=datetime(2024, 1, 1) + timedelta(hours=i))
    for i in range(5):
        await fed.add_result(small, reported_at=datetime(2026, 1, 1) + timedelta(days=i))
    for i in range(100):
        await fed.add_result(large, reported_at=datetime(2026, 1, 1) + timedelta(hours=i))
    small_count = await _statements_for(fed, small)
    large_count = await _statements_for(fed, large)
    # A DataLoader batch can split across event-loop ticks when sources answer at different
    # moments, so the two counts may differ by one; an N+1 would differ by hundreds.
    assert abs(small_count - large_count) <= 1
    # persons, then per level: enrollments+visits+settlements (3 bureaus each), platform x2,
    # 5 hospitals, 2 pharmacies; then prescriptions, items, institutions of the touched sources
    assert 0 < small_count <= 40
