"""``/metrics`` on the API listener with ``[telemetry] metrics_token = true``: only a verified
token with the operations role reads it; no token, a forged or expired one, and every
other role are refused with nothing of the metrics. Without the setting there is no route
(the separate listen address is the protection then). An operations token opens no data
route: it has no purpose of use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from security.identity import Role, ensure_demo_issuer
from security.identity.claims import ClaimError
from tests.support.federation import Federation, make_id_number


def with_telemetry(fed, **keys) -> None:
    fed.settings = fed.settings.with_tables(telemetry=keys)


async def get_metrics(app, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://medfed.test") as c:
        return await c.get("/metrics", headers=headers)


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    await fed.add_person(make_id_number(seq=404), "周九")
    return fed


async def test_only_an_operations_token_reads_metrics_on_the_api_listener(fed):
    with_telemetry(fed, metrics_token=True)
    app = fed.app()
    operations = fed.token("operations", "330000")
    ok = await get_metrics(app, operations)
    assert ok.status_code == 200, ok.text
    assert "medfed_requests_total" in ok.text and "text/plain" in ok.headers["content-type"]
    refused = {
        "no token": (None, 401),
        "forged": (operations[:-4] + ("AAAA" if not operations.endswith("AAAA") else "BBBB"), 401),
        "admin": (fed.token("admin", "330000"), 403),
        "auditor": (fed.token("auditor", "330000"), 403),
        "clinician": (fed.token("clinician", "H33010600001"), 403),
    }
    for name, (token, status) in refused.items():
        response = await get_metrics(app, token)
        assert response.status_code == status, (name, response.text)
        assert "medfed_" not in response.text, name  # nothing of the metrics
    claims = jwt.decode(operations, options={"verify_signature": False})
    assert claims["role"] == "operations" and claims["purposes"] == []


async def test_an_expired_operations_token_is_refused(fed):
    with_telemetry(fed, metrics_token=True)
    issued = datetime.now(UTC) - timedelta(hours=3)
    stale = ensure_demo_issuer(fed.data_dir).mint(
        role="operations", org="330000", ttl_seconds=600, now=issued
    )
    response = await get_metrics(fed.app(), stale)
    assert response.status_code == 401 and "medfed_" not in response.text


async def test_without_the_setting_there_is_no_metrics_route(fed):
    response = await get_metrics(fed.app(), fed.token("operations", "330000"))
    assert response.status_code >= 400  # the data routes' door (no purpose), or no route
    assert "medfed_" not in response.text


async def test_an_operations_token_opens_no_data_route(fed):
    with_telemetry(fed, metrics_token=True)
    token = fed.token("operations", "330000")
    query = {"query": "{ institutions(first: 1) { nodes { code } } }"}
    transport = httpx.ASGITransport(app=fed.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://medfed.test") as c:
        for purpose in (None, "TREATMENT", "AUDIT"):
            headers = {"Authorization": f"Bearer {token}"}
            if purpose:
                headers["X-Purpose-Of-Use"] = purpose
            response = await c.post("/graphql", json=query, headers=headers)
            assert response.status_code in (400, 403), (purpose, response.text)
            assert response.json()["errors"][0]["extensions"]["code"] in {
                "PURPOSE_REQUIRED",
                "PURPOSE_NOT_ALLOWED",
            }
        # The control: the same query with a clinician's token answers.
        ok = await c.post(
            "/graphql",
            json=query,
            headers={
                "Authorization": f"Bearer {fed.token('clinician', 'H33010600001')}",
                "X-Purpose-Of-Use": "TREATMENT",
            },
        )
        assert ok.status_code == 200 and "errors" not in ok.json(), ok.text


def test_an_operations_token_may_name_no_purpose(data_dir):
    issuer = ensure_demo_issuer(data_dir)
    with pytest.raises(ClaimError) as err:
        issuer.mint(role="operations", org="330000", purposes=["AUDIT"])
    assert err.value.claim == "purposes"
    with pytest.raises(ClaimError):  # and every other role still needs one
        issuer.mint(role="auditor", org="330000", purposes=[])
    assert Role.OPERATIONS.value == "operations"
