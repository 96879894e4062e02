"""``medfed policy table``: the field policy as the Markdown table of docs/policy.md."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    policy = subparsers.add_parser("policy", help="show the field-level policy")
    actions = policy.add_subparsers(dest="action", required=True, metavar="ACTION")
    table = actions.add_parser(
        "table",
        help="print role x purpose x data class -> ALLOW/MASK/DENY, and the opening grades",
        description="Print what each role, for each of its purposes, gets from each class of "
        "data, per row relation where that changes the answer, then the opening grade of "
        "its statistics and extracts. Generated from the policy and catalogue files, so "
        "the copies in docs/policy.md cannot drift.",
    )
    table.add_argument("--policy", type=Path, help="policy file (default security/policy.toml)")
    table.add_argument(
        "--catalogue", type=Path, help="catalogue file (default security/catalogue.toml)"
    )
    table.set_defaults(handler=_table)


def _table(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError
    from security import catalogue as cat
    from security import policy as pol
    from security.policy.grades import markdown as grades_markdown
    from security.policy.table import markdown, trust_markdown

    try:
        catalogue = cat.load(args.catalogue) if args.catalogue else cat.default_catalogue()
        policy = pol.load(args.policy) if args.policy else pol.default_policy()
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    print(markdown(catalogue, policy), end="")
    print()
    print(grades_markdown(policy.grades), end="")
    print()
    print(trust_markdown(policy), end="")
    return 0
