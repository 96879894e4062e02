"""``medfed token``: mint a demo token from the demo issuer and print it alone on stdout, so
``TOKEN=$(medfed token --role clinician --org H33010600001)`` just works."""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING

from gateway.commands import add_common, settings_from

if TYPE_CHECKING:
    from security.identity import ClaimError, DemoIssuer, IdentitySettings

_TTL_RE = re.compile(r"^(\d+)([smh]?)$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "token",
        help="mint a demo bearer token",
        description="Mint a token signed by the demo issuer (<data-dir>/keys/demo-issuer.pem, "
        "made on first use) and print it alone on stdout.",
    )
    add_common(parser)
    parser.add_argument(
        "--role",
        required=True,
        help="patient, clinician, pharmacist, insurance_agency, "
        "settlement_center, researcher, commercial_insurer, auditor, admin",
    )
    parser.add_argument(
        "--org",
        required=True,
        help="institution code (H/P/R/C + 11 digits) or six-digit region code",
    )
    parser.add_argument(
        "--person",
        metavar="PERSON_ID",
        help="the patient's personId pseudonym (32 hex characters); patients only",
    )
    parser.add_argument(
        "--purposes",
        metavar="P1,P2",
        help="allowed purposes of use, comma-separated (default: the role's own)",
    )
    parser.add_argument(
        "--cert-type",
        metavar="01|02|03",
        help="patients: the credential presented (mdtrt_cert_type): 01 e-credential (default), "
        "02 ID card, 03 social-security card",
    )
    parser.add_argument(
        "--acr",
        metavar="LEVEL",
        help="the assurance of the identity check: credential, real_name or real_person "
        "(patients' default: real_person, a face-recognition real-person check)",
    )
    parser.add_argument(
        "--professional",
        metavar="CODE",
        help="clinicians and pharmacists: the national code of the doctor (D…) or pharmacist "
        "(Y…) the token stands for; e-prescriptions are signed as this professional",
    )
    parser.add_argument("--ttl", default="1h", help="lifetime: 3600, 90s, 30m or 1h (default 1h)")
    parser.add_argument("--sub", help="subject (default: demo-<role>-<org or person>)")
    parser.add_argument(
        "--allow-outside-dev",
        action="store_true",
        help="mint even though dev mode is off (the issuers file is then left as it is)",
    )
    parser.set_defaults(handler=_run)


def parse_ttl(text: str) -> int:
    """Seconds in ``3600``, ``90s``, ``30m`` or ``1h``."""
    from gateway.cli import UsageError

    match = _TTL_RE.match(text.strip().lower())
    seconds = int(match.group(1)) * _TTL_UNITS[match.group(2)] if match else 0
    if seconds <= 0:
        raise UsageError(f"--ttl '{text}' is not a lifetime (use e.g. 3600, 90s, 30m or 1h)")
    return seconds


def _purposes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip().upper() for part in text.split(",") if part.strip()]


def _run(args: argparse.Namespace) -> int:
    from gateway.cli import UsageError
    from security.identity import (
        ClaimError,
        DemoIssuerError,
        IssuerConfigError,
        ensure_demo_issuer,
        load_identity_settings,
        open_demo_issuer,
    )

    settings = settings_from(args)
    if not settings.dev and not args.allow_outside_dev:
        raise UsageError(
            "medfed token mints demo tokens, which only dev mode trusts ([server] dev = true "
            "or MEDFED_DEV=1); pass --allow-outside-dev to mint one anyway"
        )
    identity = load_identity_settings(settings.config.identity, settings.data_dir)
    ttl = parse_ttl(args.ttl)
    if ttl > identity.max_lifetime_seconds:
        raise UsageError(
            f"--ttl {args.ttl} is longer than the gateway accepts "
            f"(identity.max_lifetime_seconds = {identity.max_lifetime_seconds})"
        )
    person = args.person.strip().lower() if args.person else None
    if person is not None and re.fullmatch(r"\d{17}[\dx]", person):
        raise UsageError(
            "--person takes the personId pseudonym (32 hex characters), never an ID number"
        )
    try:
        # Outside dev mode the trusted-issuers file is never (re)written to trust the demo key.
        if identity.uses_default_issuers_file and settings.dev:
            issuer = ensure_demo_issuer(settings.data_dir, audience=identity.audience)
        else:
            issuer = open_demo_issuer(settings.data_dir)
            _warn_if_untrusted(issuer, identity)
        token = issuer.mint(
            role=args.role.strip().lower(),
            org=args.org.strip().upper(),
            purposes=_purposes(args.purposes),
            person=person,
            sub=args.sub,
            ttl_seconds=ttl,
            audience=identity.audience,
            cert_type=args.cert_type.strip() if args.cert_type else None,
            acr=args.acr.strip().lower() if args.acr else None,
            professional=args.professional.strip().upper() if args.professional else None,
        )
    except ClaimError as exc:
        raise UsageError(_as_option(exc)) from None
    except (DemoIssuerError, IssuerConfigError) as exc:
        raise UsageError(str(exc)) from None
    print(token)
    return 0


def _as_option(exc: ClaimError) -> str:
    """Speak of the command's options rather than the token's claims."""
    if exc.claim in ("role", "org", "purposes", "person", "sub", "acr", "professional"):
        return f"--{exc.claim} {exc.problem}"
    if exc.claim == "mdtrt_cert_type":
        return f"--cert-type {exc.problem}"
    return str(exc)


def _warn_if_untrusted(issuer: DemoIssuer, identity: IdentitySettings) -> None:
    from security.identity import DEMO_ISSUER, DEMO_KID, IssuerRegistry

    registry = IssuerRegistry.load(identity.issuers_file)
    trusted = registry.issuer(DEMO_ISSUER)
    key = registry.key_for(DEMO_ISSUER, DEMO_KID)
    if (
        trusted is None
        or key is None
        or identity.audience not in trusted.audiences
        or key.public_key != issuer.private_key.public_key()
    ):
        print(
            f"medfed: warning: {identity.issuers_file} does not trust this demo key; "
            "the gateway will refuse the token",
            file=sys.stderr,
        )
