"""The ``medfed`` command line. Each sub-command lives in ``gateway/commands/<name>.py`` and
exposes ``register(subparsers)``; a command's handler returns the process exit code.

Expected failures (configuration, keys, bad input) are printed as one line on stderr and exit
with status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from security.errors import MedfedError

COMMAND_MODULES = (
    "serve",
    "db",
    "token",
    "person_id",
    "keys",
    "demo",
    "audit",
    "policy",
    "partner",
    "unseal",
    "documents",
    "extract",
    "schema",
    "supervise",
    "rx",
    "records",
)


class UsageError(MedfedError):
    """A problem the user can fix; printed as one line."""

    code = "USAGE"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medfed", description="medfed: a GraphQL gateway for medical-insurance data"
    )
    parser.add_argument(
        "--config", help="configuration file (default medfed.toml, env MEDFED_CONFIG)"
    )
    parser.add_argument("--data-dir", help="data directory (default ./data, env MEDFED_DATA_DIR)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"gateway.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except MedfedError as exc:  # every error of ours is one line the user can act on
        print(f"medfed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medfed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
