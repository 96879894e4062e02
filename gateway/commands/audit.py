"""``medfed audit verify|checkpoint|proof|check-consistency|export|reconcile``: the audit log
from the shell.

``verify`` and ``check-consistency`` need only the public verifier key (``--key``, default
``<data-dir>/keys/audit-log.pub``), so a security team can run them with a key it keeps
itself. Exit status: 0 verified, 1 the log or a proof failed verification, 2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from gateway.commands import add_common, settings_from
from gateway.config import Settings


def register(subparsers) -> None:
    audit = subparsers.add_parser(
        "audit", help="verify the audit log; print checkpoints and proofs"
    )
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")

    verify = actions.add_parser(
        "verify",
        help="recompute the whole log and check every event, subtree and signed checkpoint",
    )
    verify.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="a checkpoint note you kept: check the log still extends it (the newest of "
        "this, the [audit] checkpoint_dir file and every witness is used)",
    )
    _add_key(verify)
    verify.set_defaults(handler=_verify)

    checkpoint = actions.add_parser(
        "checkpoint", help="sign (if needed) and print the checkpoint of the current log"
    )
    checkpoint.set_defaults(handler=_checkpoint)

    proof = actions.add_parser(
        "proof", help="print an inclusion proof (--index) or a consistency proof (--from) as JSON"
    )
    which = proof.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=int, help="the event to prove")
    which.add_argument(
        "--from",
        dest="old_size",
        type=int,
        metavar="SIZE",
        help="the size of an older checkpoint to prove consistency with",
    )
    proof.add_argument(
        "--size",
        type=int,
        help="the tree size to prove against (default: "
        "a checkpoint of the whole log, signed now if needed)",
    )
    proof.set_defaults(handler=_proof)

    check = actions.add_parser(
        "check-consistency",
        help="offline: check that a newer "
        "checkpoint extends an older one, given a consistency proof",
    )
    check.add_argument("old", type=Path, help="the older checkpoint note")
    check.add_argument("new", type=Path, help="the newer checkpoint note")
    check.add_argument("proof", type=Path, help="the proof JSON (`audit proof --from`)")
    _add_key(check)
    check.set_defaults(handler=_check_consistency)

    export = actions.add_parser(
        "export",
        help="write the logged events as FHIR R4 AuditEvent resources (a Bundle) or as JSON lines",
    )
    export.add_argument("--format", choices=("fhir", "jsonl"), default="jsonl")
    export.add_argument(
        "--from",
        dest="since",
        type=_when,
        metavar="TIME",
        help="only events logged at or after this ISO time (UTC if no zone)",
    )
    export.add_argument(
        "--to",
        dest="until",
        type=_when,
        metavar="TIME",
        help="only events logged before this ISO time",
    )
    export.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="write here instead of standard output"
    )
    export.set_defaults(handler=_export)

    reconcile = actions.add_parser(
        "reconcile",
        help="settle write intents that no outcome names: look each write up at its source "
        "and log its outcome",
    )
    reconcile.add_argument(
        "--older-than",
        type=float,
        metavar="SECONDS",
        help="settle intents at least this old even if their process may still run "
        "(default [audit.reconcile] after_seconds, 300); intents of processes that are "
        "gone are settled whatever their age",
    )
    reconcile.set_defaults(handler=_reconcile)

    for sub in (verify, checkpoint, proof, check, export, reconcile):
        add_common(sub)


def _add_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        metavar="KEY",
        action="append",
        help="a verifier key, or a file holding it (default <data-dir>/keys/"
        "audit-log.pub); repeat it for a log signed under several keys, "
        "e.g. before and after a switch of crypto profile",
    )


def _usage(message: str) -> Exception:
    from gateway.cli import UsageError

    return UsageError(message)


def _config(settings: Settings):
    return settings.config.audit.log


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _usage(f"cannot read {what} {path}: {exc.strerror}") from None


def _verifiers(args: argparse.Namespace, settings: Settings) -> list:
    from security.audit import AuditKeyError, parse_verifier_key
    from security.audit.signer import VERIFIER_KEY_FILE

    keys = args.key
    if not keys:
        path = settings.data_dir / "keys" / VERIFIER_KEY_FILE
        if not path.exists():
            raise _usage(
                f"no verifier key at {path}; pass --key (the log writes it when it first signs)"
            )
        keys = [_read(path, "verifier key")]
    found = []
    for key in keys:
        text = _read(Path(key), "verifier key") if Path(key).is_file() else key
        try:
            found.append(parse_verifier_key(text))
        except AuditKeyError as exc:
            raise _usage(str(exc)) from None
    return found


async def _with_engine(settings: Settings, work):
    from connectors.sql import migrate
    from connectors.sql.engine import create_source_engine

    spec = settings.gateway_spec
    await migrate.upgrade(spec)
    engine = create_source_engine(spec)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


async def _newest_outside(settings: Settings, origin: str, verifiers: list, given: str | None):
    """The newest checkpoint outside the database (the file of notes, each witness, the
    ``--checkpoint`` given), and the lines to print about the places looked at."""
    from gateway.audit_http import audit_settings
    from security.audit.outside import newest_outside, parse_witnesses

    chosen = audit_settings(settings)
    directory = Path(chosen.checkpoint_dir)
    if not directory.is_absolute():
        directory = settings.data_dir / directory
    witnesses = parse_witnesses(chosen.witnesses)
    return await newest_outside(directory, witnesses, verifiers, origin, given)


def _verify(args: argparse.Namespace) -> int:
    from security.audit import NoteError, consistency_proof, verify_log
    from security.audit.outside import describe

    settings = settings_from(args)
    config = _config(settings)
    verifiers = _verifiers(args, settings)
    given = _read(args.checkpoint, "checkpoint") if args.checkpoint else None
    outside: list[str] = []

    async def work(engine):
        newest, notes = await _newest_outside(settings, config.origin, verifiers, given)
        outside.extend(notes)
        note = newest.note if newest is not None else None
        if newest is not None:
            outside.append(
                f"checked against the newest checkpoint outside the database: {describe(newest)}"
            )
        report = await verify_log(engine, verifiers, origin=config.origin, external_note=note)
        old = report.external
        if old is not None and report.ok:
            # What an outside party would be served: a proof from the stored subtrees,
            # checked against their root and the root recomputed from the events.
            proof = await consistency_proof(engine, old.size, report.size)
            if not (
                proof.verify() and proof.old_root == old.root and proof.new_root == report.root
            ):
                report.add(
                    "tree",
                    None,
                    f"no valid consistency proof from your checkpoint "
                    f"of size {old.size} to the log's {report.size} events",
                )
        return report

    try:
        report = asyncio.run(_with_engine(settings, work))
    except NoteError as exc:
        print(f"medfed: your checkpoint does not verify: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    for line in outside:
        # Where the outside checkpoint came from, and what was refused or not found, on
        # stderr: the report above is the result (and its format is the same as ever).
        print(f"medfed: {line}", file=sys.stderr)
    # A note outside that does not verify is evidence someone altered it: not intact.
    tampered = any(line.startswith("REFUSED") for line in outside)
    return 0 if report.ok and not tampered else 1


def _open_log(settings: Settings, engine):
    from gateway.startup import crypto_profile
    from security.audit import open_audit_log

    return open_audit_log(
        engine, settings.data_dir / "keys", _config(settings), crypto_profile(settings)
    )


def _checkpoint(args: argparse.Namespace) -> int:
    settings = settings_from(args)

    async def work(engine):
        return await _open_log(settings, engine).checkpoint()

    print(asyncio.run(_with_engine(settings, work)).note, end="")
    return 0


def _proof(args: argparse.Namespace) -> int:
    from security.audit import AuditLogError

    settings = settings_from(args)

    async def work(engine):
        log = _open_log(settings, engine)
        if args.size is None:
            signed = await log.checkpoint()
            size = signed.size
        else:
            size, signed = args.size, await log.checkpoint_at(args.size)
        if args.index is not None:
            proof = (await log.inclusion_proof(args.index, size)).to_dict()
            proof["entry"] = (await log.entry(args.index)).decode("utf-8")
        else:
            proof = (await log.consistency_proof(args.old_size, size)).to_dict()
        proof["checkpoint"] = signed.note if signed is not None else None
        return proof

    try:
        result = asyncio.run(_with_engine(settings, work))
    except AuditLogError as exc:
        raise _usage(str(exc)) from None
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _check_consistency(args: argparse.Namespace) -> int:
    from security.audit import ConsistencyProof, NoteError, open_checkpoint

    settings = settings_from(args)
    verifiers = _verifiers(args, settings)
    try:
        proof = ConsistencyProof.from_dict(json.loads(_read(args.proof, "proof")))
    except (ValueError, AttributeError) as exc:
        raise _usage(f"{args.proof}: {exc}") from None
    try:
        old = open_checkpoint(_read(args.old, "checkpoint"), verifiers)
        new = open_checkpoint(_read(args.new, "checkpoint"), verifiers, old.origin)
    except NoteError as exc:
        print(f"medfed: checkpoint does not verify: {exc}", file=sys.stderr)
        return 1
    # The proof's own roots are not trusted: only the signed ones are used.
    if (proof.old_size, proof.new_size) == (old.size, new.size) and ConsistencyProof(
        old.size, old.root, new.size, new.root, proof.path
    ).verify():
        print(
            f"consistent: {new.origin} at {new.size} events extends your checkpoint at {old.size}"
        )
        return 0
    print(
        f"NOT consistent: the checkpoint at {new.size} events does not extend the one at "
        f"{old.size} with this proof",
        file=sys.stderr,
    )
    return 1


def _reconcile(args: argparse.Namespace) -> int:
    from gateway.app import build_services
    from gateway.audit_http import RECORDER, audit_settings
    from schema.mutations.reconcile import reconcile

    settings = settings_from(args)
    after = args.older_than
    if after is None:
        after = audit_settings(settings).reconcile.after_seconds
    elif not 0 <= after <= 86_400 * 365:
        raise _usage("--older-than: must be 0 or more seconds")

    async def work() -> list:
        from connectors.sql import migrate

        await migrate.upgrade(settings.gateway_spec)
        services = build_services(settings)
        recorder = services.extras.get(RECORDER)
        if recorder is None:
            raise _usage("the audit log is disabled ([audit] enabled = false)")
        try:
            return await reconcile(services, recorder, after_seconds=after)
        finally:
            await recorder.close()
            await services.registry.dispose()
            if services.gateway_engine is not None:
                await services.gateway_engine.dispose()

    settled = asyncio.run(work())
    for item in settled:
        line = f"intent {item.intent}: {item.operation} at {item.source} {item.object_id}: "
        line += item.result + (f" ({item.reason})" if item.reason else "")
        print(line)
    still_open = sum(1 for item in settled if item.result == "OPEN")
    finished = sum(1 for item in settled if item.result == "FINISHED")
    text = f"{len(settled) - still_open - finished} settled, {still_open} left open"
    print(text + (f", {finished} half-written dispensings finished" if finished else ""))
    return 1 if still_open else 0


def _when(text: str):
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an ISO date or time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _export(args: argparse.Namespace) -> int:
    from security.audit.export import entry_parts, fhir_audit_event, leaves

    settings = settings_from(args)
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout

    async def work(engine) -> int:
        count = 0
        if args.format == "fhir":
            out.write('{"resourceType":"Bundle","type":"collection","entry":[')
        async for entry in leaves(engine, args.since, args.until):
            if args.format == "jsonl":
                out.write(entry.decode("utf-8") + "\n")
            else:
                resource = fhir_audit_event(*entry_parts(entry))
                out.write(
                    ("," if count else "\n")
                    + json.dumps(
                        {"fullUrl": f"urn:medfed:audit:{resource['id']}", "resource": resource},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
            count += 1
        if args.format == "fhir":
            out.write("]}\n")
        return count

    try:
        count = asyncio.run(_with_engine(settings, work))
    finally:
        if args.output:
            out.close()
    print(f"exported {count} events", file=sys.stderr)
    return 0
