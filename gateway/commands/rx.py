"""``medfed rx verify``: check e-prescriptions' signatures at their hospitals, offline.

Each prescription is read from whichever hospital source holds it; the doctor's signature is
checked over the prescription's canonical form, and each signed step (review, dispensing,
delivery, cancellation) over its event's, against the registered public keys of this data
directory (``keys/professionals/``). Exit status 0 when every one is valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from gateway.commands import add_common, settings_from


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rx", help="e-prescriptions: verify signatures", description=__doc__
    )
    add_common(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check the signatures of prescriptions and of each of their steps",
        description="Check the doctor's signature of each prescription and the signature of "
        "each signed step, as the hospital holds them now. Exit 1 if any is invalid or a "
        "prescription is not found.",
    )
    verify.add_argument("rx_ids", nargs="*", metavar="RX_ID", help="prescription ids")
    verify.add_argument(
        "--all", action="store_true", help="every prescription of every hospital source"
    )
    verify.add_argument("--json", action="store_true", help="one JSON object per prescription")
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError

    if bool(args.rx_ids) == bool(args.all):
        raise UsageError("give prescription ids or --all (not both)")
    return asyncio.run(_verify_async(args))


async def _verify_async(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from connectors.sql import rx_verify, rx_writers
    from connectors.sql.engine import create_source_engine
    from gateway.startup import crypto_profile
    from security.crypto.professional_keys import ProfessionalKeys

    settings = settings_from(args)
    keys = ProfessionalKeys(settings.data_dir / "keys", crypto_profile(settings))
    engines = [create_source_engine(spec) for spec in settings.sources if spec.kind == "hospital"]
    failures = 0
    try:
        wanted: list[tuple[object, str]] = []
        if args.all:
            for engine in engines:
                async with engine.connect() as conn:
                    ids = (await conn.execute(select(rx_writers.RX.c.rx_id))).scalars().all()
                wanted += [(engine, rx_id) for rx_id in ids]
        for engine, rx_id in wanted:
            failures += _report(await rx_verify.check(engine, rx_id, keys), rx_id, args.json)
        for rx_id in args.rx_ids:
            found = None
            for engine in engines:
                found = await rx_verify.check(engine, rx_id, keys)
                if found is not None:
                    break
            failures += _report(found, rx_id, args.json)
    finally:
        for engine in engines:
            await engine.dispose()
    return 1 if failures else 0


def _report(found, rx_id: str, as_json: bool) -> int:
    if found is None:
        print(json.dumps({"rxId": rx_id, "found": False}) if as_json else f"{rx_id}: NOT FOUND")
        return 1
    if as_json:
        print(
            json.dumps(
                {
                    "rxId": found.rx_id,
                    "valid": found.ok,
                    "signer": found.signer,
                    "signatureValid": found.valid,
                    "reason": found.reason,
                    "steps": [
                        {
                            "seq": s.seq,
                            "kind": s.kind,
                            "signer": s.signer,
                            "signatureValid": s.valid,
                            "reason": s.reason,
                        }
                        for s in found.steps
                    ],
                },
                ensure_ascii=False,
            )
        )
    else:
        state = "VALID" if found.ok else "INVALID"
        print(
            f"{found.rx_id}: {state} (prescription signed by {found.signer or 'no registered key'}"
            f"{'' if found.valid else ': ' + str(found.reason)})"
        )
        for s in found.steps:
            mark = {True: "valid", False: f"INVALID: {s.reason}", None: "unsigned (patient)"}
            by = "" if s.signer is None else f" by {s.signer}"
            print(f"  {s.seq} {s.kind}: {mark[s.valid]}{by}")
    return 0 if found.ok else 1
