"""The three subgraphs behind a real Hive Gateway (all on 127.0.0.1): the README's example
queries answer through the router exactly as the merged gateway answers them, and a caller who
bypasses the router and calls ``_entities`` on a subgraph still meets field authorization."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import httpx
import pytest

from schema.federation.compose import compose
from tests.support.federation import Federation, make_id_number
from tests.support.processes import hive_gateway, medfed, router_missing

pytestmark = pytest.mark.skipif(router_missing() is not None, reason=router_missing() or "")

NAME, PHONE, FINDINGS = "司马保密", "13900001111", "机密影像所见丙"
ID_NUMBER = make_id_number("330106", seq=321)

ME = (
    "{ me { name insuredRegions cloudRecord { enrollments { nodes { poolingRegion "
    "insuranceType status beginDate } } visits(first: 3) { nodes { visitType beginDate "
    "diagnosisCodes institution { name level } } pageInfo { hasNextPage endCursor } } "
    "settlements(first: 3) { nodes { settledAt medicalType total fundPay cashPay "
    "crossProvince } } filings { nodes { destination category status validFrom } } "
    "testResults { nodes { itemName value } } } } }"
)
GRANT = (
    'mutation($until: DateTime!) { grantConsent(idempotencyKey: "router-consent", input: '
    '{grantee: "H33010600001", dataClasses: [LAB_RESULT, IMAGING], purpose: TREATMENT, '
    "validUntil: $until}) { consent { status } } }"
)
RESULTS = (
    "query($p: ID!) { testResults(personId: $p, first: 5) { nodes { itemName value unit "
    "flag reportedAt performingInstitution { name level } recognition { recognized "
    "reason validUntil } } pageInfo { hasNextPage endCursor } } }"
)
SETTLEMENTS = (
    "{ settlements(first: 5, filter: {crossProvince: true, settledFrom: "
    '"2020-10-01T00:00:00", settledBefore: "2020-11-01T00:00:00"}) { nodes { '
    "settlementId settledAt insuredRegion treatmentRegion medicalType total fundPay "
    "clearingMonth clearingStatus } pageInfo { hasNextPage endCursor } } }"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("router")

    async def populate() -> tuple[Federation, str]:
        fed = await Federation(data_dir).setup()
        ref = await fed.add_person(ID_NUMBER, NAME, phone=PHONE)
        await fed.add_visits(ref, 4, institution="H37010200003")
        await fed.add_result(
            ref,
            source="hospital-h37010200003",
            category="IMAGING",
            modality="CT",
            findings=FINDINGS,
        )
        await fed.add_result(ref, source="hospital-h37010200003")
        for day in (3, 17):
            await fed.add_cross_settlement(ref, when=datetime(2020, 10, day, 9))
        return fed, ref

    fed, ref = asyncio.run(populate())
    processes = [
        medfed(data_dir, "--subgraph", name) for name in ("records", "results", "settlement")
    ]
    processes.append(medfed(data_dir))
    try:
        for process in processes:
            process.start()
        records, results, settlement, _merged = processes
        supergraph = data_dir / "supergraph.graphql"
        supergraph.write_text(
            compose(
                {
                    "records": records.url + "/graphql",
                    "results": results.url + "/graphql",
                    "settlement": settlement.url + "/graphql",
                }
            )
        )
        router = hive_gateway(supergraph, data_dir / "hive.log")
        processes.append(router)
        router.start(timeout=50)
        yield (
            fed,
            ref,
            {
                p: processes[i]
                for i, p in enumerate(("records", "results", "settlement", "merged", "router"))
            },
        )
    finally:
        for process in processes:
            process.stop()


def post(
    url: str, token: str, query: str, variables: dict | None = None, purpose: str | None = None
) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    if purpose:
        headers["X-Purpose-Of-Use"] = purpose
    response = httpx.post(
        url + "/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_readme_queries_answer_the_same_through_the_router(stack):
    fed, ref, procs = stack
    router, merged = procs["router"].url, procs["merged"].url
    patient = fed.token("patient", "330000", person=ref)
    via_router, direct = post(router, patient, ME), post(merged, patient, ME)
    assert "errors" not in via_router, via_router
    assert via_router == direct
    record = via_router["data"]["me"]["cloudRecord"]
    assert via_router["data"]["me"]["name"] == NAME
    assert len(record["visits"]["nodes"]) == 3 and len(record["settlements"]["nodes"]) == 2
    assert len(record["testResults"]["nodes"]) == 2

    until = f"{date.today() + timedelta(days=90)}T00:00:00+08:00"
    granted = post(router, patient, GRANT, {"until": until})
    assert granted["data"]["grantConsent"]["consent"]["status"] == "ACTIVE", granted

    clinician = fed.token("clinician", "H33010600001")
    via_router = post(router, clinician, RESULTS, {"p": ref}, purpose="TREATMENT")
    direct = post(merged, clinician, RESULTS, {"p": ref}, purpose="TREATMENT")
    assert "errors" not in via_router, via_router
    assert via_router == direct and len(via_router["data"]["testResults"]["nodes"]) == 2

    centre = fed.token("settlement_center", "100000")
    via_router, direct = post(router, centre, SETTLEMENTS), post(merged, centre, SETTLEMENTS)
    assert "errors" not in via_router, via_router
    assert via_router == direct and len(via_router["data"]["settlements"]["nodes"]) == 2


def test_a_denied_field_is_denied_through_the_router_too(stack):
    fed, ref, procs = stack
    stranger = fed.token("clinician", "H22010200005")
    query = "query($p: ID!) { person(personId: $p) { name phone idNumber } }"
    answer = post(procs["router"].url, stranger, query, {"p": ref}, purpose="TREATMENT")
    assert NAME not in str(answer) and PHONE not in str(answer)
    assert {e["extensions"]["code"] for e in answer["errors"]} == {"FORBIDDEN_FIELD"}


@pytest.mark.parametrize(
    "subgraph, typename, selection",
    [
        ("records", "Person", "name idNumber phone address"),
        ("results", "Person", "testResults { nodes { findings value itemName } }"),
        ("results", "CloudRecord", "testResults { nodes { findings value itemName } }"),
        ("settlement", "CloudRecord", "settlements { nodes { total insuredRegion } }"),
    ],
)
def test_entities_on_a_subgraph_bypassing_the_router_is_still_authorized(
    stack, subgraph, typename, selection
):
    fed, ref, procs = stack
    query = (
        f"query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on {typename} "
        f"{{ {selection} }} }} }}"
    )
    variables = {"r": [{"__typename": typename, "personId": ref}]}
    url = procs[subgraph].url
    # No token: the subgraph's own door refuses.
    assert (
        httpx.post(
            url + "/graphql", json={"query": query, "variables": variables}, timeout=10
        ).status_code
        == 401
    )
    # A clinician of a hospital with no relation to the person reads nothing personal.
    stranger = fed.token("clinician", "H22010200005")
    answer = post(url, stranger, query, variables, purpose="TREATMENT")
    raw = str(answer)
    for secret in (NAME, PHONE, ID_NUMBER, FINDINGS, "葡萄糖"):
        assert secret not in raw, (subgraph, typename, secret)
    # Another patient may not even resolve the entity.
    other = fed.token("patient", "330000", person="0" * 32)
    answer = post(url, other, query, variables)
    assert answer["data"]["_entities"] == [None]
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
