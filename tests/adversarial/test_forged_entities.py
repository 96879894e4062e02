"""Forged ``_entities`` representations, sent straight to each subgraph and to the merged
gateway: extra or missing keys, types that are no entity here (``Query``, ``Person`` on the
settlement subgraph), items that are not objects, keys of the wrong type. Each gets
``BAD_USER_INPUT`` at its own index, never an internal message, and nothing is logged as
unexpected; a valid representation in the same request still resolves."""

from __future__ import annotations

import pytest

from tests.support.adversarial import NAME, VICTIM_ID, leaked, post
from tests.support.logs import capture_logs

ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) {
    __typename ... on Institution { code name } } }"""
VALID = {"__typename": "Institution", "code": "H37010200003"}
INTERNALS = ("resolve_reference", "KeyError", "Traceback", "unexpected keyword", "Strawberry")


def forged(ref: str, entity: str) -> list:
    return [
        {"__typename": entity, "personId": ref, "name": NAME},  # an extra key
        {"__typename": entity},  # the key missing
        {"__typename": "Query"},
        {"__typename": "Query", "personId": ref},
        {"personId": ref},  # no __typename
        {"__typename": 7, "personId": ref},
        {"__typename": entity, "personId": 12345},  # a key of the wrong type
        {"__typename": entity, "personId": [VICTIM_ID]},
        {"__typename": entity, "personId": {"nested": VICTIM_ID}},
        {"__typename": entity, "personId": ""},
        {"__typename": "Institution", "code": "H37010200003", "personId": ref},
        [VICTIM_ID],  # not an object
        VICTIM_ID,
        17,
    ]


def _check(response, representations: list, valid_at: int) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    for needle in INTERNALS:
        assert needle not in response.text, (needle, response.text[:400])
    by_index = {e["path"][1]: e for e in body.get("errors", []) if e.get("path")}
    for index in range(len(representations)):
        if index == valid_at:
            continue
        error = by_index.get(index)
        assert error is not None, (index, representations[index], body)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert error["path"] == ["_entities", index]
    # The positive control: the valid item among the forged ones resolves.
    valid = body["data"]["_entities"][valid_at]
    assert valid == {
        "__typename": "Institution",
        "code": "H37010200003",
        "name": "济南历下中心医院",
    }
    for value in (NAME, VICTIM_ID):
        assert not leaked(response.text, value)


@pytest.mark.parametrize(
    "subgraph,entity",
    [
        ("records", "Person"),
        ("records", "CloudRecord"),
        ("results", "Person"),
        ("results", "CloudRecord"),
        ("settlement", "CloudRecord"),
        ("settlement", "Person"),  # Person is no entity of the settlement subgraph
        (None, "Person"),  # the merged gateway
    ],
)
async def test_forged_representations_are_bad_user_input_and_nothing_is_logged(
    world, subgraph, entity
):
    fed, ref, _ = world
    app = fed.app() if subgraph is None else fed.subgraph_app(subgraph)
    representations = [*forged(ref, entity), VALID]
    with capture_logs() as logs:
        response = await post(
            fed,
            app,
            "clinician",
            "H33010600001",
            ["TREATMENT"],
            ENTITIES,
            {"r": representations},
        )
    _check(response, representations, len(representations) - 1)
    assert not logs.errors(), [r.getMessage() for r in logs.errors()]
    for line in logs.lines:
        assert not leaked(line, NAME) and not leaked(line, VICTIM_ID), line


async def test_outside_dev_mode_the_refusal_names_no_entity_or_key(data_dir):
    from tests.support.adversarial import world_rows
    from tests.support.federation import Federation

    fed = await Federation(data_dir, dev=False).setup()
    ref = await world_rows(fed)
    fed.token("clinician", "H33010600001")  # writes the trusted-issuers file first
    response = await post(
        fed,
        fed.subgraph_app("settlement"),
        "clinician",
        "H33010600001",
        ["TREATMENT"],
        ENTITIES,
        {"r": [{"__typename": "Person", "personId": ref}, {"__typename": "CloudRecord"}]},
    )
    messages = " ".join(e["message"] for e in response.json()["errors"])
    assert "CloudRecord" not in messages and "Institution" not in messages
    assert "personId" not in messages
    assert {e["extensions"]["code"] for e in response.json()["errors"]} == {"BAD_USER_INPUT"}
