"""``medfed db upgrade|downgrade|current``: migrate every configured source database."""

from __future__ import annotations

import argparse
import asyncio

from gateway.commands import add_common, settings_from


def register(subparsers) -> None:
    db = subparsers.add_parser("db", help="migrate the source databases")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("upgrade", "bring every source to the head of its kind's migrations"),
        ("downgrade", "take every source down to a revision (default: base, i.e. empty)"),
        ("current", "show the revision of every source"),
    ):
        sub = actions.add_parser(name, help=text)
        add_common(sub)
        sub.add_argument("--source", action="append", help="only this source (repeatable)")
        if name != "current":
            sub.add_argument("revision", nargs="?", default="head" if name == "upgrade" else "base")
        sub.set_defaults(handler=_run)


def _selected(args: argparse.Namespace):
    from gateway.cli import UsageError

    settings = settings_from(args)
    specs = [*settings.sources, settings.gateway_spec]
    if args.source:
        unknown = set(args.source) - {s.name for s in specs}
        if unknown:
            raise UsageError(f"no configured source named {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.name in args.source]
    return specs


def _run(args: argparse.Namespace) -> int:
    from connectors.sql import migrate

    specs = _selected(args)

    async def go() -> None:
        for spec in specs:
            if args.action == "upgrade":
                await migrate.upgrade(spec, args.revision)
            elif args.action == "downgrade":
                await migrate.downgrade(spec, args.revision)
            print(f"{spec.name:28} {spec.kind:10} {await migrate.current(spec) or '(empty)'}")

    asyncio.run(go())
    return 0
