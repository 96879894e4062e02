"""One JSON parse of each body with one depth limit: the edge refuses a body nested too deep
with 400 JSON_TOO_DEEP (not the 500 Strawberry's own parse raised), the GraphQL view reuses
the edge's parse, and numbers beyond double range still reach GraphQL as values."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.config import ConfigError
from gateway.edge import body as json_body
from tests.support.federation import Federation

TYPENAME = "{ __typename }"


def nested(depth: int) -> str:
    """A body whose variables make the whole body ``depth`` objects deep."""
    inner = depth - 1  # the body is the first level; `variables` holds the rest
    return '{"query": "' + TYPENAME + '", "variables": ' + '{"a":' * inner + "1" + "}" * inner + "}"


@pytest.fixture
async def fed(data_dir):
    return await Federation(data_dir).setup(institutions=False)


async def post_raw(fed, app, text: str):
    token = fed.token("settlement_center", "330000")
    async with fed.client(app, token) as client:
        return await client.post(
            "/graphql", content=text, headers={"content-type": "application/json"}
        )


@pytest.mark.parametrize("depth", [1000, 33])
async def test_a_body_nested_beyond_the_limit_is_400_json_too_deep(fed, depth):
    response = await post_raw(fed, fed.app(), nested(depth))
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "JSON_TOO_DEEP"
    assert "32" in error["message"]


async def test_a_body_at_the_limit_is_answered(fed):
    response = await post_raw(fed, fed.app(), nested(32))
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_the_depth_limit_is_configurable_and_checked_strictly(fed):
    settings = fed.settings.with_tables(limits={"max_json_depth": 8})
    app = create_app(settings)
    assert (await post_raw(fed, app, nested(8))).status_code == 200
    refused = await post_raw(fed, app, nested(9))
    assert refused.json()["errors"][0]["extensions"]["code"] == "JSON_TOO_DEEP"
    for wrong in ("deep", 1, 10_000, True, 2.5):
        with pytest.raises(ConfigError) as raised:
            fed.settings.with_tables(limits={"max_json_depth": wrong})
        assert raised.value.key == "limits.max_json_depth"
        assert "\n" not in str(raised.value)


async def test_each_body_is_parsed_once(fed, monkeypatch):
    calls = []
    real = json_body._loads
    monkeypatch.setattr(json_body, "_loads", lambda body: calls.append(body) or real(body))
    # The edge parses; the view's decode_json (which replaces Strawberry's json.loads) would
    # call the same parser again if it did not reuse that parse.
    response = await post_raw(fed, fed.app(), '{"query": "' + TYPENAME + '"}')
    assert response.status_code == 200, response.text
    assert len(calls) == 1


async def test_the_view_applies_the_same_limit_to_what_it_decodes_itself(fed):
    # Not through the edge (another caller of the view): the same parser, the same limit.
    with pytest.raises(json_body.BodyRefused) as raised:
        json_body.decode(nested(40).encode())
    assert raised.value.code == "JSON_TOO_DEEP"
    assert json_body.decode(b'{"query": "{ a }"}') == {"query": "{ a }"}


@pytest.mark.parametrize("number", ["1e400", "1" + "0" * 400, "1" + "0" * 5000])
async def test_a_number_beyond_double_range_is_bad_user_input_at_its_path(fed, number):
    text = (
        '{"query": "query($n: Int) { institutions(first: $n) { nodes { code } } }", '
        '"variables": {"n": ' + number + "}}"
    )
    response = await post_raw(fed, fed.app(), text)
    assert response.status_code == 200, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["problems"][0]["path"] == ["n"]


async def test_malformed_json_is_still_malformed(fed):
    for text in ('{"query": ', '{"query": 1e}', "[1, 2"):
        response = await post_raw(fed, fed.app(), text)
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "MALFORMED_REQUEST"
