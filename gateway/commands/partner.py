"""``medfed partner keygen``: make a partner's sealing key pair and register its public half."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from gateway.commands import add_common, settings_from


def register(subparsers) -> None:
    partner = subparsers.add_parser("partner", help="partner keys for sealed responses")
    actions = partner.add_subparsers(dest="action", required=True, metavar="ACTION")
    keygen = actions.add_parser(
        "keygen", help="new key pair for a partner organisation; registers the public key"
    )
    keygen.add_argument("--org", required=True, help="the partner's organisation code")
    keygen.add_argument("--kem", required=True, choices=("X25519", "MLKEM768-X25519"))
    keygen.add_argument("--kid", help="key id (default <org>-<kem>-<random>)")
    keygen.add_argument(
        "--out", default=".", help="directory for the private key file <kid>.key (default .)"
    )
    keygen.set_defaults(handler=_keygen)
    listing = actions.add_parser("list", help="registered partner keys")
    listing.set_defaults(handler=_list)
    for sub in (keygen, listing):
        add_common(sub)


def _registry_path(args: argparse.Namespace) -> Path:
    from security.crypto.partners import partners_file

    settings = settings_from(args)
    return partners_file(settings.data_dir, settings.config.sealing.partners_file)


def _keygen(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError
    from security.crypto import hpke_seal
    from security.crypto.key_files import create_private_once
    from security.crypto.partners import PartnerKeyError
    from security.crypto.partners import register as register_key
    from security.crypto.unseal import private_key_text

    tag = "x25519" if args.kem == "X25519" else "mlkem768x25519"
    kid = args.kid or f"{args.org.lower()}-{tag}-{secrets.token_hex(4)}"
    if not hpke_seal.KID_PATTERN.match(kid):
        raise UsageError(f"key {kid!r}: kid must be 1-64 of A-Z a-z 0-9 . _ -")
    registry = _registry_path(args)
    out = Path(args.out) / f"{kid}.key"
    if out.exists():
        raise UsageError(f"key {kid!r}: {out} exists already; not overwritten")
    pair = hpke_seal.generate(args.kem)
    try:
        # Registered first: a failure leaves no private key whose public half is unknown.
        register_key(registry, args.org, kid, args.kem, pair.public_raw)
    except PartnerKeyError as exc:
        raise UsageError(str(exc)) from None
    create_private_once(out, lambda: private_key_text(kid, args.kem, args.org, pair.private_raw))
    pinned = _publish_gateway_key(args, out.parent)
    print(f"registered {kid} ({args.kem}) for {args.org} in {registry}")
    print(f"private key: {out} (mode 600) - give it to the partner, keep no copy")
    print(f"gateway sealing key: {pinned} - the partner pins it to verify sealed answers")
    return 0


def _publish_gateway_key(args: argparse.Namespace, folder: Path) -> Path:
    """Copy the gateway's published sealing key (made now if new) beside the partner key."""
    from gateway.cli import UsageError
    from gateway.startup import crypto_profile
    from security.crypto.key_files import replace_file
    from security.crypto.sealing_key import VERIFIER_FILE, SealingKeyError, load_sealing_signer

    settings = settings_from(args)
    keys_dir = settings.data_dir / "keys"
    try:
        load_sealing_signer(keys_dir, crypto_profile(settings))
    except SealingKeyError as exc:
        raise UsageError(str(exc)) from None
    target = folder / VERIFIER_FILE
    replace_file(target, (keys_dir / VERIFIER_FILE).read_bytes(), mode=0o644)
    return target


def _list(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError
    from security.crypto.partners import PartnerKeyError, load

    try:
        keys = load(_registry_path(args))
    except PartnerKeyError as exc:
        raise UsageError(str(exc)) from None
    for key in keys.values():
        print(f"{key.org}\t{key.kid}\t{key.kem}")
    return 0
