"""The rewriting of errors (``schema.client_errors``): an error that is not the client's doing
is the only one logged, and answers ``INTERNAL`` without its message outside dev mode; an
error a client causes is rewritten once, with a code, and never logged."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import strawberry

from schema.build import build_schema

SECRET = "330106198005171234"


@strawberry.type
class Boom:
    @strawberry.field
    def boom(self) -> str:
        raise RuntimeError(f"a row value {SECRET}")

    @strawberry.field
    def echo(self, n: str) -> str:
        return n


@pytest.mark.parametrize("dev", [False, True])
async def test_an_unexpected_error_is_logged_and_answers_internal(caplog, dev):
    schema = build_schema(dev=dev, query=Boom)
    with caplog.at_level(logging.ERROR, logger="medfed.graphql"):
        result = await schema.execute("{ boom }", context_value=SimpleNamespace(request_id="r-1"))
    (error,) = result.errors
    assert error.extensions["code"] == "INTERNAL"
    records = [r for r in caplog.records if r.name == "medfed.graphql"]
    assert len(records) == 1 and records[0].exc_info is not None
    assert SECRET not in records[0].getMessage()  # the type and path only, not the message
    if dev:
        assert SECRET in error.message  # dev mode keeps the message for the developer
    else:
        assert SECRET not in error.message and "r-1" in error.message


async def test_a_client_error_is_rewritten_once_and_not_logged(caplog):
    schema = build_schema(dev=False, query=Boom)
    query = "query($n: String!) { echo(n: $n) }"
    with caplog.at_level(logging.DEBUG, logger="medfed.graphql"):
        first = await schema.execute(query, variable_values={"n": [SECRET]})
        second = await schema.execute(query, variable_values={"n": {"a": SECRET}})
        fine = await schema.execute(query, variable_values={"n": SECRET})
    for result in (first, second):
        (error,) = result.errors
        assert (
            error.message == "Variable '$n' has an invalid value: expected a value of type String!"
        )
        assert error.extensions["code"] == "BAD_USER_INPUT"
        assert error.original_error is None
    assert fine.data == {"echo": SECRET} and not fine.errors
    assert not [r for r in caplog.records if r.name == "medfed.graphql"]


async def test_a_cached_validation_error_keeps_its_rewritten_form():
    """Validation results are cached per document: the second answer is the same, rewritten
    error, not a second rewriting of it."""
    schema = build_schema(dev=False, query=Boom)
    query = f"{{ echo(n: {SECRET[:9]}) }}"
    first = await schema.execute(query)
    second = await schema.execute(query)
    assert [e.message for e in first.errors] == [e.message for e in second.errors]
    assert first.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert SECRET[:9] not in first.errors[0].message
    assert "Argument 'n'" in first.errors[0].message
