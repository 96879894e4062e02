"""``medfed schema`` prints an SDL any GraphQL parser reads, equal to the served schema."""

from __future__ import annotations

from graphql import build_schema, print_schema

from gateway import cli
from schema.build import build_schema as build_served
from schema.mutations import Mutation


def test_schema_prints_the_served_sdl_self_contained(tmp_path, capsys):
    assert cli.main(["schema"]) == 0
    printed = capsys.readouterr().out
    parsed = build_schema(printed)  # the federation directives are defined in it
    served = build_served(dev=False, mutation=Mutation)._schema
    assert print_schema(parsed) == print_schema(served)
    assert "myAccessLog" in printed and "grantConsent" in printed
    assert cli.main(["schema", "-o", str(tmp_path / "schema.graphql")]) == 0
    assert (tmp_path / "schema.graphql").read_text(encoding="utf-8") == printed
