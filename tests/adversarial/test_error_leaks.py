"""Errors that say nothing they should not: a value of the wrong type (the victim's ID number
in a list, as a number, in an object, as an enum value, a date or a key) is named by its
variable and expected type and never repeated, in the answer or in any log line; every error
a client can cause carries a code and none is logged as unexpected; no suggestion of any
kind outside dev mode; ``_service { sdl }`` only for the federation router's token."""

from __future__ import annotations

import pytest

from tests.support.adversarial import NAME, PHONE, VICTIM_ID, leaked, post, world_rows
from tests.support.federation import Federation
from tests.support.logs import capture_logs

BY_ID = "query($n: String!) { person(idNumber: $n) { personId } }"
SETTLEMENTS = "query($f: SettlementFilter) { settlements(filter: $f) { nodes { total } } }"
RESULTS = (
    "query($c: TestCategory, $s: DateTime) { testResults(personId: $p, category: $c, "
    "since: $s) { nodes { resultId } } }"
).replace("$p", '"x"')

# (query, variables, variable, expected type) with the value in every wrong shape.
COERCION = [
    (BY_ID, {"n": [VICTIM_ID]}, "n", "String!"),
    (BY_ID, {"n": int(PHONE)}, "n", "String!"),
    (BY_ID, {"n": {"id": VICTIM_ID}}, "n", "String!"),
    (BY_ID, {"n": True}, "n", "String!"),
    (SETTLEMENTS, {"f": VICTIM_ID}, "f", "SettlementFilter"),
    (SETTLEMENTS, {"f": {"personId": [VICTIM_ID]}}, "f", "ID"),
    (SETTLEMENTS, {"f": {"settledFrom": f"{VICTIM_ID}T00"}}, "f", "DateTime"),
    (SETTLEMENTS, {"f": {"medicalType": VICTIM_ID}}, "f", "VisitType"),
    (SETTLEMENTS, {"f": {VICTIM_ID: 1}}, "f", "SettlementFilter"),
    (SETTLEMENTS, {"f": {"crossProvince": VICTIM_ID}}, "f", "Boolean"),
    (RESULTS, {"c": NAME}, "c", "TestCategory"),
    (RESULTS, {"s": NAME}, "s", "DateTime"),
    (RESULTS, {"s": {"n": [NAME]}}, "s", "DateTime"),
]
# The same values written into the query text.
LITERALS = [
    f"{{ person(idNumber: {int(PHONE)}) {{ personId }} }}",
    f'{{ settlements(filter: {{settledFrom: "{VICTIM_ID}"}}) {{ nodes {{ total }} }} }}',
    f'{{ settlements(filter: {{personId: ["{VICTIM_ID}"]}}) {{ nodes {{ total }} }} }}',
    f'{{ testResults(personId: "x", category: {"LAB" + PHONE}) {{ nodes {{ resultId }} }} }}',
    f'{{ person(idNumber "{VICTIM_ID}") {{ name }} }}',  # a syntax error quoting the token
    f'{{ person(idNumber: """{NAME}""" x) {{ name }} }}',
]
SECRETS = (VICTIM_ID, NAME, PHONE)


@pytest.fixture
async def quiet_world(tmp_path):
    """The victim's world outside dev mode (no suggestions, no introspection)."""
    (tmp_path / "quiet").mkdir()
    fed = await Federation(tmp_path / "quiet", dev=False).setup()
    ref = await world_rows(fed)
    fed.token("clinician", "H33010600001")  # writes the trusted-issuers file
    return fed, ref, fed.app()


def _no_secret(text: str, where: str) -> None:
    for value in SECRETS:
        assert not leaked(text, value), f"{where}: {value!r} in {text[:300]}"


async def _ask(fed, app, query, variables=None, role="clinician", org="H33010600001"):
    return await post(fed, app, role, org, ["TREATMENT"], query, variables or {})


@pytest.mark.parametrize("query,variables,name,expected", COERCION)
async def test_a_value_of_the_wrong_type_is_named_by_its_variable_never_repeated(
    quiet_world, query, variables, name, expected
):
    fed, _ref, app = quiet_world
    with capture_logs() as logs:
        response = await _ask(fed, app, query, variables)
    assert response.status_code == 200, response.text
    errors = response.json()["errors"]
    assert errors and all(e["extensions"]["code"] == "BAD_USER_INPUT" for e in errors), errors
    assert any(f"${name}" in e["message"] and expected in e["message"] for e in errors), errors
    _no_secret(response.text, "answer")
    for line in logs.lines:
        _no_secret(line, "log")
    assert not logs.errors(), [r.getMessage() for r in logs.errors()]


async def test_the_same_variable_of_the_right_type_answers(quiet_world):
    """The positive control: the variables above reach the gateway and, well typed, work."""
    fed, _ref, app = quiet_world
    body = (await _ask(fed, app, BY_ID, {"n": VICTIM_ID})).json()
    assert "errors" not in body or all(
        e["extensions"]["code"] == "FORBIDDEN_FIELD" for e in body["errors"]
    )
    body = (await _ask(fed, app, SETTLEMENTS, {"f": {"settledFrom": "2020-01-01T00:00:00"}})).json()
    assert body["data"]["settlements"] is not None and "errors" not in body


@pytest.mark.parametrize("query", LITERALS)
async def test_a_literal_of_the_wrong_type_is_never_repeated(quiet_world, query):
    fed, _ref, app = quiet_world
    with capture_logs() as logs:
        response = await _ask(fed, app, query)
    errors = response.json()["errors"]
    codes = {e["extensions"]["code"] for e in errors}
    assert codes <= {"BAD_USER_INPUT", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}, errors
    _no_secret(response.text, "answer")
    for line in logs.lines:
        _no_secret(line, "log")


CLIENT_MISTAKES = [
    "{ person(idNumber: ",  # syntax
    "{ persn { name } }",  # unknown field
    '{ person(idNumbr: "x") { name } }',  # unknown argument
    "query($x: Strin) { __typename }",  # unknown type, unused variable
    "{ __typename @skipp(if: true) }",  # unknown directive
    "query($n: String!) { person(idNumber: $n) { name } }",  # missing required variable
    'query($a: Int = "x") { __typename }',  # a default of the wrong type
    "subscription { __typename }",  # no subscriptions here
    "fragment F on Person { name } { __typename }",  # unused fragment
]


@pytest.mark.parametrize("query", CLIENT_MISTAKES)
async def test_every_error_a_client_causes_has_a_code_and_is_not_logged(quiet_world, query):
    fed, _ref, app = quiet_world
    with capture_logs() as logs:
        response = await _ask(fed, app, query)
    assert response.status_code in (200, 400), response.text
    errors = response.json()["errors"]
    assert errors and all(e.get("extensions", {}).get("code") for e in errors), errors
    assert not logs.errors(), [r.getMessage() for r in logs.errors()]


async def test_an_unknown_operation_name_is_refused_with_a_code(quiet_world):
    fed, _ref, app = quiet_world
    with capture_logs() as logs:
        response = await post(
            fed,
            app,
            "clinician",
            "H33010600001",
            ["TREATMENT"],
            "query A { __typename }",
            {},
            operation=VICTIM_ID,
        )
    assert response.status_code in (200, 400)
    errors = response.json()["errors"]
    assert all(e["extensions"]["code"] for e in errors), errors
    _no_secret(response.text, "answer")
    assert not logs.errors()


# (query, variables): each draws a suggestion from graphql-core when suggestions are on.
SUGGESTIONS = [
    ("{ persn { name } }", {}),  # field
    ('{ person(idNumbr: "x") { name } }', {}),  # argument
    ("query($x: Strin) { __typename }", {}),  # type
    ('{ testResults(personId: "x", category: LABB) { nodes { resultId } } }', {}),  # enum
    (
        'query($c: TestCategory) { testResults(personId: "x", category: $c) { nodes '
        "{ resultId } } }",
        {"c": "LABB"},
    ),  # enum value in a variable
    (SETTLEMENTS, {"f": {"personid": "x"}}),  # input field
    ('{ settlements(filter: {personid: "x"}) { nodes { total } } }', {}),  # input field literal
    ("{ person { ... on Persn { name } } }", {}),  # type condition
]


def _suggests(response) -> bool:
    return any("Did you mean" in e["message"] for e in response.json().get("errors", []))


async def test_no_suggestion_of_any_kind_outside_dev_mode(quiet_world):
    fed, _, app = quiet_world
    for query, variables in SUGGESTIONS:
        response = await _ask(fed, app, query, variables)
        assert not _suggests(response), (query, response.text)


async def test_graphql_core_alone_would_suggest_in_each_case():
    """The positive control: each mistake above does draw a suggestion from graphql-core."""
    import graphql

    from schema.build import build_schema

    schema = build_schema(dev=True)._schema
    for query, variables in SUGGESTIONS:
        result = await graphql.graphql(schema, query, variable_values=variables)
        assert any("Did you mean" in e.message for e in result.errors or ()), query


async def test_field_argument_and_type_suggestions_stay_on_in_dev_mode(world):
    fed, _, app = world
    for query, variables in SUGGESTIONS[:3]:
        assert _suggests(await _ask(fed, app, query, variables)), query


SDL = "{ _service { sdl } }"
SDL_SPELLINGS = [SDL, "{ a: _service { sdl } }", "{ ... on Query { _service { sdl } } }"]


@pytest.mark.parametrize("query", SDL_SPELLINGS)
async def test_the_sdl_answers_only_the_routers_token_outside_dev_mode(quiet_world, query):
    fed, _ref, _app = quiet_world
    issuer = _issuer_of(fed.token("admin", "110000", sub="router-1"))
    settings = fed.settings.with_tables(
        federation={"routers": [{"issuer": issuer, "sub": "router-1"}]}
    )
    fed.settings = settings
    app = fed.subgraph_app("records")
    stranger = await _sdl(fed, app, query, sub="someone-else")
    assert stranger.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "type Person" not in stranger.text
    router = await _sdl(fed, app, query, sub="router-1")
    assert "type Person" in router.text, router.text[:300]


async def test_the_sdl_answers_anyone_in_dev_mode(world):
    fed, _ref, _app = world
    response = await _sdl(fed, fed.subgraph_app("records"), SDL, sub="anyone")
    assert "type Person" in response.text


async def _sdl(fed, app, query, *, sub):
    token = fed.token("admin", "110000", sub=sub)
    async with fed.client(app, token) as c:
        return await c.post("/graphql", json={"query": query})


def _issuer_of(token: str) -> str:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})["iss"]
