"""``medfed demo build|show``: the deterministic synthetic demo across every source."""

from __future__ import annotations

import argparse
import asyncio
import sys

from gateway.commands import add_common, settings_from

DEFAULT_PERSONS = 3000
DEFAULT_SEED = 20201101


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="build or show the synthetic demo data")
    actions = demo.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="generate the demo into every configured source")
    add_common(build)
    build.add_argument(
        "--persons",
        type=int,
        default=DEFAULT_PERSONS,
        help=f"number of persons (default {DEFAULT_PERSONS})",
    )
    build.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"random seed; same seed and persons, same data (default {DEFAULT_SEED})",
    )
    build.add_argument(
        "--force",
        action="store_true",
        help="empty sources that hold data and rebuild (keys are kept)",
    )
    build.add_argument(
        "--workers",
        type=int,
        default=None,
        help="generator processes (default: by size and CPU count)",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.add_argument(
        "--no-anchor",
        action="store_true",
        help="leave the records out of the records log (they then read UNANCHORED)",
    )
    build.set_defaults(handler=_build)
    show = actions.add_parser("show", help="print interesting demo persons as JSON lines")
    add_common(show)
    show.add_argument("--limit", type=int, default=8, help="how many persons (default 8)")
    show.set_defaults(handler=_show)


def _build(args: argparse.Namespace) -> int:
    from connectors.demo import build
    from connectors.demo.writer import SourceWriter
    from gateway.cli import UsageError
    from gateway.startup import open_keyring

    if args.persons < 1:
        raise UsageError(f"--persons must be at least 1 (got {args.persons})")
    if args.seed < 0:
        raise UsageError(f"--seed must not be negative (got {args.seed})")
    settings = settings_from(args)
    specs = list(settings.sources)
    if not specs:
        raise UsageError("no sources are configured; add [[sources]] to medfed.toml")

    async def make_room() -> None:
        writer = SourceWriter(specs)
        try:
            full = await writer.sources_with_rows()
            if full and not args.force:
                more = f" and {len(full) - 3} more" if len(full) > 3 else ""
                named = ", ".join(full[:3]) + more
                raise UsageError(
                    f"the sources {named} already hold data; run `medfed demo "
                    f"build --force` to empty them and rebuild (keys are kept)"
                )
            if full:
                await writer.empty()
                # The demo's anchors go with its rows: a rebuild anchors the new ones.
                await empty_records_log()
        finally:
            await writer.close()

    async def empty_records_log() -> None:
        from sqlalchemy import delete

        from connectors.sql.engine import create_source_engine
        from security.records.log import CHECKPOINTS, HEAD, LEAVES, NODES

        engine = create_source_engine(settings.gateway_spec)
        try:
            async with engine.begin() as conn:
                for table in (LEAVES, NODES, CHECKPOINTS, HEAD):
                    await conn.execute(delete(table))
        finally:
            await engine.dispose()
        notes = checkpoint_directory(settings, records_settings(settings)) / "checkpoints.jsonl"
        notes.unlink(missing_ok=True)

    async def anchor() -> tuple[dict[str, int], float]:
        import time

        from connectors.sql.engine import create_source_engine
        from gateway.records_backfill import anchor_sources
        from security.crypto import FieldCipher

        started = time.perf_counter()
        engine = create_source_engine(settings.gateway_spec)
        try:
            records = open_records_log(settings, engine, publish=True)
            counts = await anchor_sources(records, specs, FieldCipher(keyring))
            await records.checkpoint()
            await records.publisher.drain()
        finally:
            await engine.dispose()
        return counts, time.perf_counter() - started

    from connectors.sql import migrate
    from gateway.records_log import checkpoint_directory, open_records_log, records_settings

    asyncio.run(build.migrate_all(specs))
    asyncio.run(migrate.upgrade(settings.gateway_spec))
    # Keys before anything is emptied: open_keyring refuses if data exists without its keys.
    keyring = open_keyring(settings, create=True)
    asyncio.run(make_room())
    for spec in specs:
        keyring.ensure_source(spec.name)
    report = asyncio.run(
        build.build(
            specs,
            keyring,
            settings.data_dir,
            persons=args.persons,
            seed=args.seed,
            workers=args.workers,
            progress=not args.quiet,
        )
    )
    rows = sum(sum(tables.values()) for tables in report.counts.values())
    print(
        f"demo: {report.persons} persons, {rows} rows in {len(specs)} sources, "
        f"{report.seconds:.1f} s ({report.persons / max(report.seconds, 1e-9):.0f} persons/s)"
    )
    print(
        f"content hash {report.content_hash} (seed {report.seed}); "
        f"manifest in {settings.data_dir / build.MANIFEST}"
    )
    if not args.no_anchor:
        counts, seconds = asyncio.run(anchor())
        print(f"records log: {sum(counts.values())} demo records anchored in {seconds:.1f} s")
    return 0


def _show(args: argparse.Namespace) -> int:
    import orjson

    from connectors.demo import show
    from gateway.cli import UsageError
    from gateway.startup import open_keyring

    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1 (got {args.limit})")
    settings = settings_from(args)
    keyring = open_keyring(settings, create=False)
    persons = asyncio.run(show.interesting_persons(list(settings.sources), keyring, args.limit))
    if not persons:
        raise UsageError("no demo persons found; run `medfed demo build` first")
    for person in persons:
        sys.stdout.write(orjson.dumps(person).decode("utf-8") + "\n")
    return 0
