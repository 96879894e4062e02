"""A person's lists are paged in SQL where the caller sees all of that person's rows or none
alike (the patient, a treating institution), and loaded whole where rows differ (a regional
agency, whose REGION relation is per row): the same pages either way, every row once."""

from __future__ import annotations

from collections import Counter

import pytest

from connectors.registry import Source
from schema.projection import Projection
from tests.support.federation import RECENT_VISIT, Federation, gql, make_id_number

QUERY = """query($id: ID!, $after: String) { person(personId: $id) { cloudRecord {
  visits(first: 7, after: $after) { nodes { visitId beginDate }
    pageInfo { hasNextPage endCursor } } } } }"""


@pytest.fixture
async def fed(data_dir):
    return await Federation(data_dir).setup()


@pytest.fixture
async def person(fed):
    """20 visits in Zhejiang (one recent, at H33010600001) and 15 in Shandong."""
    ref = await fed.add_person(make_id_number(seq=311), "王五")
    ids = await fed.add_visits(ref, 19, with_prescriptions=False)
    ids += await fed.add_visits(ref, 1, with_prescriptions=False, begin=RECENT_VISIT)
    ids += await fed.add_visits(
        ref,
        15,
        source="bureau-370000",
        institution="H37010200003",
        insured="370102",
        with_prescriptions=False,
    )
    return ref, ids


@pytest.fixture
def reads(monkeypatch) -> Counter:
    """Rows each kind of read returned, per table: ('top', 'visits') or ('whole', 'visits')."""
    seen: Counter = Counter()
    top, whole = Source.fetch_top, Source.fetch_in

    async def spy_top(self, table, *args, **kwargs):
        rows = await top(self, table, *args, **kwargs)
        seen[("top", table.name)] += len(rows)
        seen[("top calls", table.name)] += 1
        return rows

    async def spy_whole(self, table, *args, **kwargs):
        rows = await whole(self, table, *args, **kwargs)
        seen[("whole", table.name)] += len(rows)
        return rows

    monkeypatch.setattr(Source, "fetch_top", spy_top)
    monkeypatch.setattr(Source, "fetch_in", spy_whole)
    return seen


async def _walk(fed, token: str, purpose: str | None, ref: str) -> list[tuple]:
    app = fed.app()
    pages = []
    after = None
    async with fed.client(app, token, purpose) as c:
        for _ in range(10):
            body = await gql(c, QUERY, {"id": ref, "after": after})
            assert "errors" not in body, body
            page = body["data"]["person"]["cloudRecord"]["visits"]
            info = page["pageInfo"]
            pages.append(([n["visitId"] for n in page["nodes"]], info["hasNextPage"]))
            if not info["hasNextPage"]:
                return pages
            after = info["endCursor"]
    raise AssertionError("the pages never ended")


async def test_the_patient_is_paged_in_sql_with_the_pages_of_the_whole_path(
    fed, person, reads, monkeypatch
):
    ref, ids = person
    token = fed.token("patient", "330106", person=ref)
    pages = await _walk(fed, token, None, ref)
    assert [len(p) for p, _ in pages] == [7, 7, 7, 7, 7]
    assert sorted(i for p, _ in pages for i in p) == sorted(ids)  # every visit once
    assert [more for _, more in pages] == [True, True, True, True, False]
    assert reads[("whole", "visits")] == 0
    # Each page asks each of three bureaus for at most first + 1 rows.
    assert reads[("top calls", "visits")] == 3 * len(pages)
    assert reads[("top", "visits")] <= 8 * 2 * len(pages)
    # Positive control: with rows taken as differing, the whole path gives the same pages.
    monkeypatch.setattr(Projection, "rows_alike", lambda *_: False)
    reads.clear()
    assert await _walk(fed, token, None, ref) == pages
    assert reads[("top", "visits")] == 0 and reads[("whole", "visits")] == 35 * len(pages)


async def test_a_treating_clinician_is_paged_in_sql(fed, person, reads):
    ref, ids = person
    token = fed.token("clinician", "H33010600001")
    pages = await _walk(fed, token, "TREATMENT", ref)
    assert sorted(i for p, _ in pages for i in p) == sorted(ids)
    assert reads[("whole", "visits")] == 0 and reads[("top calls", "visits")] == 3 * len(pages)


async def test_a_regional_agency_has_the_rows_loaded_whole_and_sees_its_region_only(
    fed, person, reads
):
    ref, ids = person
    token = fed.token("insurance_agency", "330000")
    pages = await _walk(fed, token, "FUND_SUPERVISION", ref)
    seen = [i for p, _ in pages for i in p]
    assert sorted(seen) == sorted(ids[:20])  # Zhejiang's visits, not Shandong's
    # hasNextPage counts visible rows: 20 of them are three pages, the last one short.
    assert [(len(p), more) for p, more in pages] == [(7, True), (7, True), (6, False)]
    assert reads[("top", "visits")] == 0 and reads[("top calls", "visits")] == 0
    assert reads[("whole", "visits")] == 35 * len(pages)
