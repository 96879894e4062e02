"""``medfed unseal --key KEY [--gateway-key sealing.pub] [FILE|-]``: verify a sealed answer
against the pinned gateway key and print it opened with a partner key.

Runs on the partner's side; it needs no gateway configuration, only the private key file and
the gateway's published sealing key (``medfed partner keygen`` puts ``sealing.pub`` beside the
private key, where this command looks for it by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


def register(subparsers) -> None:
    unseal = subparsers.add_parser("unseal", help="verify and open a sealed answer (partner side)")
    unseal.add_argument("--key", required=True, help="the partner's private key file")
    unseal.add_argument(
        "--gateway-key",
        help="the gateway's sealing key to pin (default: sealing.pub beside --key)",
    )
    unseal.add_argument("--request-id", help="require this server request id (X-Request-Id)")
    unseal.add_argument(
        "--client-request-id",
        help="require the answer to be for the X-Request-Id you sent (defeats replays)",
    )
    unseal.add_argument(
        "--allow-v1",
        action="store_true",
        help="also open format-1 answers, which carry no signature (with a warning)",
    )
    unseal.add_argument(
        "file", nargs="?", default="-", help="the response JSON (default - : standard input)"
    )
    unseal.set_defaults(handler=_unseal)


def _unseal(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError
    from security.crypto.unseal import (
        GatewayKey,
        SealingError,
        UnauthenticatedAnswerWarning,
        load_private_key,
        unseal_response,
    )

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot read: {exc.strerror}") from None
    pinned = Path(args.gateway_key) if args.gateway_key else Path(args.key).parent / "sealing.pub"
    try:
        gateway = GatewayKey.load(pinned) if pinned.exists() or args.gateway_key else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnauthenticatedAnswerWarning)
            opened = unseal_response(
                text,
                load_private_key(args.key),
                gateway_key=gateway,
                request_id=args.request_id,
                client_request_id=args.client_request_id,
                allow_v1=args.allow_v1,
            )
    except json.JSONDecodeError:
        raise UsageError(f"{args.file}: not JSON") from None
    except SealingError as exc:
        raise UsageError(str(exc)) from None
    for warning in caught:
        print(f"medfed unseal: warning: {warning.message}", file=sys.stderr)
    print(json.dumps(opened, ensure_ascii=False, indent=2))
    return 0
