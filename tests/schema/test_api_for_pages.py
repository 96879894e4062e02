"""API fixes the pages needed: an error in one list of the cloud record stays at that list,
and PageInfo is complete per the Relay spec."""

from __future__ import annotations

from tests.support.federation import Federation, gql, make_id_number

RECORD = """query($after: String) { me { personId cloudRecord {
  visits(first: 2, after: $after) { nodes { visitId } }
  enrollments { nodes { enrollmentId } } } } }"""
PAGES = """query($after: String) { me { cloudRecord { visits(first: 2, after: $after) {
  nodes { visitId } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  edges { cursor } } } } }"""


async def test_a_bad_cursor_nulls_only_its_own_list(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(), "张三")
    await fed.add_visits(ref, 3)
    async with fed.client(fed.app(), fed.token("patient", "330106", person=ref)) as c:
        body = await gql(c, RECORD, {"after": "not-a-cursor"})
        me = body["data"]["me"]
        assert me["personId"] == ref  # the record answers
        assert me["cloudRecord"]["visits"] is None  # only the list with the bad cursor is null
        assert len(me["cloudRecord"]["enrollments"]["nodes"]) == 1
        (error,) = body["errors"]
        assert error["path"] == ["me", "cloudRecord", "visits"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        # Positive control: the same query with no cursor has no error and the visits.
        body = await gql(c, RECORD, {"after": None})
        assert (
            "errors" not in body and len(body["data"]["me"]["cloudRecord"]["visits"]["nodes"]) == 2
        )


async def test_page_info_has_start_cursor_and_previous_page(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(make_id_number(), "张三")
    await fed.add_visits(ref, 3)
    async with fed.client(fed.app(), fed.token("patient", "330106", person=ref)) as c:
        first = (await gql(c, PAGES))["data"]["me"]["cloudRecord"]["visits"]
        info = first["pageInfo"]
        assert info["startCursor"] == first["edges"][0]["cursor"]
        assert info["endCursor"] == first["edges"][-1]["cursor"]
        assert (info["hasNextPage"], info["hasPreviousPage"]) == (True, False)
        second = (await gql(c, PAGES, {"after": info["endCursor"]}))["data"]["me"]["cloudRecord"][
            "visits"
        ]
        assert len(second["nodes"]) == 1
        assert (second["pageInfo"]["hasNextPage"], second["pageInfo"]["hasPreviousPage"]) == (
            False,
            True,
        )
