"""``medfed schema``: the SDL of the API a client is served, for a front-end developer to
generate types from (GraphQL Code Generator, Apollo, Strawberry's codegen). Self-contained:
the federation directives it uses are defined in it, so any GraphQL parser reads it, and it
needs no token, no source and no introspection (which is off outside dev mode)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the GraphQL SDL of the API (for generating client types)",
        description="Print the schema the gateway serves outside dev mode, as SDL.",
    )
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from graphql import print_schema

    from schema.build import build_schema
    from schema.mutations import Mutation

    text = print_schema(build_schema(dev=False, mutation=Mutation)._schema) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
