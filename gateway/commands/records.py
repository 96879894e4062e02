"""``medfed records verify``: prove the records log untouched and every anchored record
still the same at its source.

First the whole log, by the audit log's verifier (security.audit.verify): every leaf
recomputed from its entry, the tree from every leaf, each stored subtree, the head, every
stored checkpoint's root and signature by the records log's key (``keys/records-log.vkey``),
and the newest checkpoint found outside the database (the ``[records]`` file of signed notes,
each witness, ``--checkpoint``), which the leaves must still extend: a tail cut together with
its checkpoint rows is found there. Then each record: read from its source, put in its canonical
form and hashed with its leaf's salt; a record whose digest differs is named CHANGED, one the
source no longer holds MISSING (kind, source and id: never its content). Exit status 0 when
everything holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from gateway.commands import add_common, settings_from


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "records",
        help="the records log: verify it and the records at their sources",
        description=__doc__,
    )
    add_common(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check the whole records log and each record at its source",
        description=__doc__,
    )
    verify.add_argument(
        "--log-only", action="store_true", help="check the log alone, not the sources"
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a checkpoint note you kept: the log must still extend it (the newest of this, "
        "the [records] checkpoint_dir file and every witness is used)",
    )
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    given = Path(args.checkpoint).read_text(encoding="utf-8") if args.checkpoint else None
    return asyncio.run(_verify_async(args, given))


async def _verify_async(args: argparse.Namespace, given: str | None) -> int:
    from connectors.sql.engine import create_source_engine
    from gateway.records_log import checkpoint_directory, open_records_log, records_settings
    from gateway.startup import open_keyring
    from security.audit.note import NoteError
    from security.audit.outside import describe, newest_outside
    from security.crypto import FieldCipher

    settings = settings_from(args)
    chosen = records_settings(settings)
    engine = create_source_engine(settings.gateway_spec)
    log = open_records_log(settings, engine, publish=False)
    started = time.perf_counter()
    report: dict = {"changed": [], "missing": []}
    try:
        try:
            newest, outside = await newest_outside(
                checkpoint_directory(settings, chosen),
                chosen.witness_configs(),
                [log.signer],
                log.origin,
                given,
            )
        except NoteError as exc:
            print(f"medfed: your checkpoint does not verify: {exc}", file=sys.stderr)
            return 1
        if newest is not None:
            outside.append(f"checked against the newest checkpoint outside: {describe(newest)}")
        check = await log.verify(log.signer, external_note=newest and newest.note)
        # A note outside that does not verify is evidence someone altered it: not valid.
        refused = [line for line in outside if line.startswith("REFUSED")]
        report |= {
            "records": check.size,
            "logValid": check.ok and not refused,
            "problems": check.problems + refused,
            "outside": outside,
            "newestOutside": None if newest is None else newest.checkpoint.size,
        }
        if not args.log_only:
            cipher = FieldCipher(open_keyring(settings, create=False))
            await _check_sources(settings, log, cipher, report)
    finally:
        await engine.dispose()
    report["seconds"] = round(time.perf_counter() - started, 3)
    ok = report["logValid"] and not report["changed"] and not report["missing"]
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        state = "OK" if report["logValid"] else "INVALID"
        print(f"records log: {report['records']} records, {state}")
        for problem in report["problems"]:
            print(f"  {problem}")
        for line in report["outside"]:
            print(f"medfed: {line}", file=sys.stderr)
        for what in ("changed", "missing"):
            for kind, source, record_id in report[what]:
                print(f"{what.upper()} {kind} {source} {record_id}")
        if not args.log_only:
            print(
                f"records at their sources: {len(report['changed'])} changed, "
                f"{len(report['missing'])} missing"
            )
    return 0 if ok else 1


async def _check_sources(settings, log, cipher, report: dict) -> None:
    from collections import defaultdict

    from connectors.sql import anchoring
    from connectors.sql.engine import create_source_engine
    from security.records.digest import digest

    specs = {spec.name: spec for spec in settings.sources}
    engines: dict = {}
    try:
        async for batch in log.leaves():
            wanted: dict[tuple[str, str], list[dict]] = defaultdict(list)
            for entry in batch:
                wanted[(entry["kind"], entry["source"])].append(entry)
            for (kind, source), entries in wanted.items():
                if source not in specs or kind not in anchoring.ANCHORED:
                    report["missing"] += [[kind, source, e["id"]] for e in entries]
                    continue
                if source not in engines:
                    engines[source] = create_source_engine(specs[source])

                def open_cell(column, key, blob, source=source, kind=kind):
                    return cipher.decrypt(
                        blob, source=source, table=kind, column=column, row_key=key
                    )

                found = await anchoring.fetch_records(
                    engines[source], kind, [e["id"] for e in entries]
                )
                for e in entries:
                    if e["id"] not in found:
                        report["missing"].append([kind, source, e["id"]])
                        continue
                    row, items = found[e["id"]]
                    record = anchoring.record_of(kind, row, items, open_cell)
                    if digest(kind, record, e["salt"], log.profile) != e["digest"]:
                        report["changed"].append([kind, source, e["id"]])
    finally:
        for engine in engines.values():
            await engine.dispose()
