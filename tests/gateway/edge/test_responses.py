"""Every refusal before execution is written by one function in one shape, the
GraphQL-over-HTTP ``{"errors": [{"message", "extensions": {"code"}}]}``: authentication,
the edge's limits, sealing, the GraphQL view, the auditors' endpoints and the key registry."""

from __future__ import annotations

import pytest

from tests.support.federation import Federation


@pytest.fixture
async def fed(data_dir):
    return await Federation(data_dir).setup(institutions=False)


def _shape(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"errors"}  # no "data": the operation never ran
    (error,) = body["errors"]
    assert set(error) == {"message", "extensions"} and error["extensions"]["code"] == code
    return error["message"]


async def test_every_writer_answers_the_same_shape(fed):
    app = fed.app()
    async with fed.client(app, None) as anonymous:  # authentication
        answer = await anonymous.post("/graphql", json={"query": "{ __typename }"})
        assert "Authorization" in _shape(answer, 401, "UNAUTHENTICATED")
        assert answer.headers["cache-control"] == "no-store"
    clerk = fed.token("settlement_center", "330000")
    async with fed.client(app, clerk, "SETTLEMENT") as c:
        deep = '{"query": "{ __typename }", "variables": ' + '{"a":' * 40 + "1" + "}" * 41
        edge = await c.post("/graphql", content=deep, headers={"content-type": "application/json"})
        _shape(edge, 400, "JSON_TOO_DEEP")  # the edge
        sealed = await c.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"X-Seal-To": "no-such-key"}
        )
        assert "X-Seal-To" in _shape(sealed, 400, "SEAL_KEY_UNKNOWN")  # sealing
        view = await c.post("/graphql", json={"query": "{ __typename }", "operationName": "x"})
        assert "operationName" in _shape(view, 400, "BAD_REQUEST")  # the GraphQL view
        audit = await c.get("/audit/checkpoint")
        assert "audit log" in _shape(audit, 403, "FORBIDDEN")  # the auditors' endpoints
        missing = await c.get("/keys/professionals/none")
        _shape(missing, 404, "NOT_FOUND")  # the professionals' key registry
        # The positive control: the same client, a request nothing refuses.
        fine = await c.post("/graphql", json={"query": "{ __typename }"})
        assert fine.status_code == 200 and fine.json() == {"data": {"__typename": "Query"}}
