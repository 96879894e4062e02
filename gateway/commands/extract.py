"""``medfed extract``: write a de-identified extract for a research partner.

``medfed extract --job ID`` writes an approved job (requested through ``requestExtract`` and
approved through ``approveExtract`` or here with ``--approve``). ``medfed extract --partner
R11010800001 --role researcher --classes identity,visit,diagnosis`` requests, approves and
writes one in one go: the operator's path, audited like the GraphQL one (EXTRACT events).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import UTC, datetime

from gateway.commands import add_common, settings_from

ROLES = ("researcher", "commercial_insurer")
PURPOSE_OF = {"researcher": "RESEARCH", "commercial_insurer": "UNDERWRITING"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="write a de-identified extract (k-anonymous, per-partner pseudonyms)",
        description="Write a de-identified extract: an approved job (--job), or a new one for "
        "a partner. The grade in the policy file decides the classes, k and l.",
    )
    add_common(parser)
    parser.add_argument("--job", help="an extract job id (REQUESTED needs --approve)")
    parser.add_argument("--approve", action="store_true", help="approve a REQUESTED --job")
    parser.add_argument("--partner", help="the partner's organisation code (R… or C…)")
    parser.add_argument("--role", choices=ROLES, default="researcher")
    parser.add_argument(
        "--classes", default="identity,visit,diagnosis", help="comma-separated classes"
    )
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--detail", choices=("coarse", "fine"), default="coarse")
    parser.set_defaults(handler=_extract)


def _extract(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError

    if (args.job is None) == (args.partner is None):
        raise UsageError("give --job or --partner (exactly one)")
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from gateway.app import build_services
    from gateway.cli import UsageError
    from schema.extracts.produce import ExtractRefused, check, produce
    from security.audit.events import extract_event
    from security.privacy.extract_jobs import APPROVED, REQUESTED, ExtractJob, ExtractJobs

    settings = settings_from(args)
    services = build_services(settings)
    recorder = services.extras.get("audit")
    now = datetime.now(UTC)
    try:
        jobs = ExtractJobs(services.gateway_engine)
        if args.job:
            job = await jobs.get(args.job)
            if job is None:
                raise UsageError(f"no extract job {args.job}")
        else:
            classes = tuple(sorted({c.strip() for c in args.classes.split(",") if c.strip()}))
            try:
                check(services.policy, args.role, PURPOSE_OF[args.role], classes)
            except ExtractRefused as exc:
                raise UsageError(str(exc)) from None
            job = await jobs.request(
                ExtractJob(
                    job_id=f"X{uuid.uuid4().hex[:23].upper()}",
                    role=args.role,
                    org=args.partner,
                    requested_by="cli|operator",
                    purpose=PURPOSE_OF[args.role],
                    classes=classes,
                    detail=args.detail,
                    format=args.format,
                    status=REQUESTED,
                    requested_at=now,
                )
            )
        if job.status == REQUESTED and (args.approve or args.partner):
            await jobs.decide(job.job_id, APPROVED, "cli|operator", now)
            if recorder is not None:
                await recorder.record(
                    extract_event(
                        principal=None,
                        purpose=job.purpose,
                        action=APPROVED,
                        extract={
                            "jobId": job.job_id,
                            "partner": job.org,
                            "role": job.role,
                            "classes": list(job.classes),
                            "by": "cli|operator",
                        },
                        request_id=job.job_id,
                    )
                )
            job = await jobs.get(job.job_id)
        if job.status != APPROVED:
            raise UsageError(f"job {job.job_id} is {job.status}; only an APPROVED job is written")
        outcome = await produce(services, job, now)
        print(json.dumps(outcome, ensure_ascii=False, indent=2))
        return 0
    finally:
        if recorder is not None:
            await recorder.close()
        await services.registry.dispose()
        await services.gateway_engine.dispose()
