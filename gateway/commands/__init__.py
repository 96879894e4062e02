"""Sub-commands of ``medfed``; each module has ``register(subparsers)``."""

from __future__ import annotations

import argparse

from gateway.config import Settings, load_settings


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings for a command: file, then ``MEDFED_*`` variables, then ``--data-dir``."""
    return load_settings(getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))


def add_common(parser: argparse.ArgumentParser) -> None:
    """Let ``--config``/``--data-dir`` also follow the sub-command (``medfed demo build
    --data-dir X``), as users type them."""
    parser.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="data directory (default ./data, env MEDFED_DATA_DIR)",
    )
