"""``medfed supervise scan --from --to``: the claims review after settlement over a period."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime

from gateway.commands import add_common, settings_from


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "supervise",
        help="fund supervision: scan settlements with the claims rule base",
        description="Fund supervision (docs/supervision.md).",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    scan = verbs.add_parser(
        "scan",
        help="review the settlements of a period with every enabled rule",
        description="Run every enabled rule of the claims rule base over the settlements with "
        "FROM <= settled time < TO at every bureau and the national platform; store each hit "
        "as an OPEN warning (the same hit found again is not stored twice) and write one "
        "audit event for the run. Prints one JSON line per hit (rule, grade, settlement, "
        "institution, detail; no personal value) and a summary line.",
    )
    add_common(scan)
    scan.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    scan.add_argument("--to", dest="end", required=True, help="day after the last, YYYY-MM-DD")
    scan.add_argument(
        "--dry-run", action="store_true", help="store no warning and write no audit event"
    )
    scan.add_argument("--quiet", action="store_true", help="print the summary line only")
    scan.set_defaults(handler=_scan)


def _day(flag: str, text: str) -> datetime:
    from gateway.cli import UsageError

    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise UsageError(f"{flag}: '{text}' is not a date YYYY-MM-DD") from None


def _scan(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError

    start, end = _day("--from", args.start), _day("--to", args.end)
    if end <= start:
        raise UsageError("--to must be after --from")
    return asyncio.run(_run(args, start, end))


async def _run(args: argparse.Namespace, start: datetime, end: datetime) -> int:
    from connectors.sql import migrate
    from gateway.app import build_services
    from gateway.audit_http import RECORDER
    from gateway.supervision import run_scan

    settings = settings_from(args)
    await migrate.upgrade(settings.gateway_spec)  # the warnings live in the gateway database
    services = build_services(settings)
    recorder = services.extras.get(RECORDER)
    try:
        result, stored = await run_scan(services, recorder, start, end, keep=not args.dry_run)
        if not args.quiet:
            for f in result.findings:
                print(
                    json.dumps(
                        {
                            "rule": f.rule,
                            "grade": f.grade,
                            "settlementId": f.setl_id,
                            "source": f.source,
                            "institution": f.institution_code,
                            "settledAt": f.settled_at.isoformat(),
                            "detail": f.detail,
                        },
                        ensure_ascii=False,
                    )
                )
        print(
            json.dumps(
                {
                    "settlements": result.settlements,
                    "hits": len(result.findings),
                    "stored": len(stored),
                    "dryRun": args.dry_run,
                }
            )
        )
        return 0
    finally:
        if recorder is not None:
            await recorder.close()
        await services.registry.dispose()
        if services.gateway_engine is not None:
            await services.gateway_engine.dispose()
