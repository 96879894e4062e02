"""The metrics a cloud-record read moves, in process: its request by operation and status,
one fetch per source asked, the audit append, the policy's denials by data class and the
refusal codes; and the metrics never carry the person's values."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from gateway.telemetry.metrics import exposition
from tests.support.federation import RECENT_VISIT, Federation, make_id_number

NAME, ID_NUMBER = "王秀英", make_id_number(seq=555)
RECORD = """query CloudRecord($id: ID!) { person(personId: $id) { name idNumber phone
  cloudRecord { visits(first: 5) { nodes { visitType diagnosisCodes } } } } }"""


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await fed.add_person(ID_NUMBER, NAME)
    await fed.add_visits(ref, 2, begin=RECENT_VISIT)
    return fed, ref


async def ask(fed, ref: str, role: str, org: str, purpose: str):
    async with fed.client(fed.app(), fed.token(role, org), purpose) as c:
        return await c.post("/graphql", json={"query": RECORD, "variables": {"id": ref}})


async def test_a_cloud_record_read_moves_its_metrics(world):
    fed, ref = world
    ok = dict(route="/graphql", operation="CloudRecord", status="200")
    bureau = dict(source="bureau-330000", kind="bureau", outcome="ok")
    before = {
        "requests": sample("medfed_requests_total", **ok),
        "bureau": sample("medfed_source_fetch_duration_seconds_count", **bureau),
        "audit": sample("medfed_audit_commit_duration_seconds_count"),
        "denied": sample("medfed_fields_total", data_class="identity", decision="denied"),
        "forbidden": sample("medfed_refusals_total", code="FORBIDDEN_FIELD"),
    }
    # A hospital with no treating relation: identifiers denied (the refusals' control is
    # the treating hospital below, which reads them).
    stranger = await ask(fed, ref, "clinician", "H22010200005", "TREATMENT")

    assert stranger.status_code == 200
    codes = [e["extensions"]["code"] for e in stranger.json()["errors"]]
    assert "FORBIDDEN_FIELD" in codes
    assert sample("medfed_requests_total", **ok) == before["requests"] + 1
    assert sample("medfed_source_fetch_duration_seconds_count", **bureau) > before["bureau"]
    assert sample("medfed_audit_commit_duration_seconds_count") == before["audit"] + 1
    assert sample("medfed_refusals_total", code="FORBIDDEN_FIELD") == before[
        "forbidden"
    ] + codes.count("FORBIDDEN_FIELD")
    denied = sample("medfed_fields_total", data_class="identity", decision="denied")
    assert denied > before["denied"]
    assert sample("medfed_source_state", source="bureau-330000") == 0
    text = exposition().decode()
    for secret in (NAME, ID_NUMBER, ref, "13812345678"):
        assert secret not in text


def test_an_unnamed_operation_is_labelled_by_its_hash_and_a_numeric_name_too():
    from graphql import parse

    from gateway.telemetry.names import ANONYMOUS, INVALID, OTHER, OperationLabels, safe_name
    from gateway.telemetry.shape import shape_hash

    assert safe_name("CloudRecord") == "CloudRecord"
    assert safe_name("q330106198005171234") is None  # an ID number hidden in a name
    assert safe_name("a1b2c3") == "a1b2c3"
    labels = OperationLabels(limit=2)
    shape = shape_hash(parse('{ person(idNumber: "330106198005171234") { name } }'))
    label = labels.label(None, shape)
    assert label == shape and "3301" not in label
    assert labels.label("q330106198005171234", shape) == label  # the name is not used
    assert labels.label(None, None) == INVALID  # a document that did not validate
    assert labels.label(None, None, document=False) == ANONYMOUS
    # The cap, per kind: unnamed documents cannot push named operations out.
    assert labels.label(None, shape_hash(parse("{ a }"))) != OTHER
    assert labels.label(None, shape_hash(parse("{ b }"))) == OTHER
    assert labels.label("CloudRecord", shape_hash(parse("{ c }"))) == "CloudRecord"
    assert labels.label(None, shape) == label  # one already seen keeps its label
