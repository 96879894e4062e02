"""``medfed unseal --key KEY [FILE|-]``: print a sealed response opened with a partner key.

Runs on the partner's side; it needs no gateway configuration, only the private key file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    unseal = subparsers.add_parser("unseal", help="open a sealed response (partner side)")
    unseal.add_argument("--key", required=True, help="the partner's private key file")
    unseal.add_argument(
        "file", nargs="?", default="-", help="the response JSON (default - : standard input)"
    )
    unseal.set_defaults(handler=_unseal)


def _unseal(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError
    from security.crypto.unseal import SealingError, load_private_key, unseal_response

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot read: {exc.strerror}") from None
    try:
        opened = unseal_response(text, load_private_key(args.key))
    except json.JSONDecodeError:
        raise UsageError(f"{args.file}: not JSON") from None
    except SealingError as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(opened, ensure_ascii=False, indent=2))
    return 0
