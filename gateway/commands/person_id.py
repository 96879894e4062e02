"""``medfed person-id``: the personId an identity provider puts in a patient token.

A patient identity provider (the national e-credential issuer) knows the person's citizen ID
number: the e-credential is issued against it, and an ID card or social-security card carries
it. The token's ``person`` claim is the federation's pseudonym of that number, the keyed HMAC
every source stores as ``person_ref`` (security.crypto.blind_index). This command computes it
from the keyring's person-pseudonym key and nothing else: it asks no source and answers the
same for a number insured anywhere or nowhere, so it tells its operator nothing the key they
already hold does not.
"""

from __future__ import annotations

import argparse
import sys

from gateway.commands import add_common, settings_from


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "person-id",
        help="the personId (person claim) of a citizen ID number",
        description="Print the personId pseudonym of each citizen ID number, one per line, "
        "computed from this data directory's keyring alone (no source is asked, so the "
        "answer says nothing about insurance). Prefer --stdin: a number on the command line "
        "lands in the shell history and the process list.",
    )
    add_common(parser)
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--id-number", metavar="NUMBER", help="one 18-character ID number")
    given.add_argument(
        "--stdin", action="store_true", help="read ID numbers from stdin, one per line"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from connectors.domain import codes
    from gateway.cli import UsageError
    from gateway.startup import open_keyring
    from security.crypto import BlindIndexer

    raw = [args.id_number] if args.id_number is not None else sys.stdin.read().splitlines()
    numbers: list[str] = []
    for line, text in enumerate(raw, 1):
        number = text.strip().upper()
        if not number:
            continue
        if problem := codes.validate_id_number(number):
            # Never echo the value: say where it is and what is wrong, not what it is.
            where = "--id-number" if args.id_number is not None else f"line {line} of stdin"
            raise UsageError(f"{where}: {problem}")
        numbers.append(number)
    indexer = BlindIndexer(open_keyring(settings_from(args), create=False))
    for number in numbers:
        print(indexer.person_ref(number))
    return 0
