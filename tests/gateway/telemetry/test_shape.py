"""The document hash in spans and metric labels is the hash of the document's shape: two
lookups that differ only in the ID number they carry share one hash, so the hash cannot be
brute-forced back to the number (the ID space is small once region and birth date are
guessed); the hash of the raw text, which could, appears nowhere."""

from __future__ import annotations

import hashlib
import io
import logging

import graphql.language.ast as ast
import pytest
from graphql import parse
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from gateway.edge.logs import JsonFormatter
from gateway.telemetry.metrics import exposition
from gateway.telemetry.names import INVALID
from gateway.telemetry.shape import _Normaliser, normalised, shape_hash
from tests.support.federation import Federation, make_id_number
from tests.support.tracing import memory_spans

FIRST, SECOND = make_id_number(seq=301), make_id_number(seq=302)


def lookup(id_number: str) -> str:
    return '{ person(idNumber: "' + id_number + '") { gender birthDate } }'


def agency(fed):
    return fed.client(fed.app(), fed.token("insurance_agency", "330000"), "SETTLEMENT")


def text_hash(text: str) -> str:
    """What the hash used to be (and what a brute force would try): the raw text's."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def test_documents_differing_only_in_literals_or_client_names_share_a_shape():
    one = parse(
        f'query Q330106198005171234($d: Date = "2020-01-01") {{ who: person(idNumber: "{FIRST}")'
        " { ...F cloudRecord { visits(first: 5, from: $d) { nodes { visitType } } } } } "
        "fragment F on Person { gender }"
    )
    two = parse(
        f'query Other($since: Date = "2024-12-31") {{ person(idNumber: "{SECOND}") '
        "{ ...G cloudRecord { visits(first: 50, from: $since) { nodes { visitType } } } } } "
        "fragment G on Person { gender }"
    )
    assert shape_hash(one) == shape_hash(two)
    text = normalised(one)
    for client_text in (FIRST, "330106198005171234", "who", "2020-01-01", "Q3301", " F "):
        assert client_text not in text, (client_text, text)
    # Control: a different shape (another field asked) hashes differently.
    three = parse(lookup(FIRST).replace("gender", "gender name"))
    assert shape_hash(three) != shape_hash(parse(lookup(FIRST)))
    assert shape_hash(parse(lookup(FIRST))) != text_hash(lookup(FIRST))


def test_every_kind_of_literal_is_replaced():
    """Each value node graphql-core has, other than a variable, has its replacement: a kind
    added by a later graphql-core fails here instead of slipping into the hash."""

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    kinds = {c.kind for c in subclasses(ast.ValueNode)} - {"variable"}
    assert {"int_value", "string_value", "enum_value", "object_value"} <= kinds
    for kind in kinds:
        assert hasattr(_Normaliser, f"enter_{kind}"), kind
    literal = parse('{ a(i: 7, f: 1.5, s: "x", b: true, n: null, e: RED, l: [1, 2], o: {k: "v"}) }')
    bare = parse('{ a(i: 0, f: 0, s: "", b: false, n: 1, e: BLUE, l: [], o: {}) }')
    assert shape_hash(literal) == shape_hash(bare)


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    for id_number, name in ((FIRST, "钱七"), (SECOND, "孙八")):
        await fed.add_person(id_number, name)
    return fed


def label_values(operation: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "medfed_requests_total", {"route": "/graphql", "operation": operation, "status": "200"}
        )
        or 0.0
    )


async def test_two_lookups_by_id_number_share_one_hash_and_carry_neither(world):
    fed = world
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with memory_spans() as spans:
            async with agency(fed) as c:
                answers = [
                    await c.post("/graphql", json={"query": lookup(id_number)})
                    for id_number in (FIRST, SECOND)
                ]
            finished = list(spans.get_finished_spans())
    finally:
        root.removeHandler(handler)
    for answer in answers:
        assert answer.status_code == 200 and answer.json()["data"]["person"], answer.text
    servers = [s for s in finished if s.kind is SpanKind.SERVER and s.parent is None]
    assert len(servers) == 2
    hashes = {s.attributes["graphql.document.hash"] for s in servers}
    assert len(hashes) == 1, hashes
    (shape,) = hashes
    assert shape == shape_hash(parse(lookup(FIRST)))
    # The unnamed operation is labelled by that hash in the metrics: one label, two requests.
    assert {s.attributes["graphql.operation.name"] for s in servers} == {shape}
    assert label_values(shape) >= 2
    everything = "\n".join(
        [
            *(f"{s.name} {dict(s.attributes or {})} {s.status.description}" for s in finished),
            exposition().decode(),
            stream.getvalue(),
        ]
    )
    assert shape in everything  # the control: the search sees what was written
    for id_number in (FIRST, SECOND):
        assert id_number not in everything
        assert text_hash(lookup(id_number)) not in everything


async def test_a_document_that_does_not_validate_has_no_hash(world):
    """An unknown field is the client's text (it could spell anything), so an unnamed
    document that fails validation is labelled ``(invalid)``, with no hash; a named one
    keeps its (checked) name."""
    fed = world
    bad = lookup(FIRST).replace("gender", "x" + FIRST[:12])
    with memory_spans() as spans:
        async with agency(fed) as c:
            unnamed = await c.post("/graphql", json={"query": bad})
            named = await c.post("/graphql", json={"query": "query Typo " + bad})
        servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert unnamed.json()["errors"] and named.json()["errors"]
    by_name = {s.attributes.get("graphql.operation.name") for s in servers}
    assert by_name == {INVALID, "Typo"}
    assert all("graphql.document.hash" not in s.attributes for s in servers)
