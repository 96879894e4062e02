"""Helpers for the demo tests: build through the real command line into a data directory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from gateway import cli
from tests.support import REPO

CONFIG = REPO / "medfed.toml"


def medfed(data_dir: Path, *args: str) -> int:
    return cli.main(["--config", str(CONFIG), "--data-dir", str(data_dir), *args])


def build(data_dir: Path, persons: int, seed: int = 20201101, *extra: str) -> dict:
    assert (
        medfed(
            data_dir,
            "demo",
            "build",
            "--persons",
            str(persons),
            "--seed",
            str(seed),
            "--quiet",
            *extra,
        )
        == 0
    )
    return json.loads((data_dir / "demo-manifest.json").read_text(encoding="utf-8"))


def db(data_dir: Path, source: str) -> sqlite3.Connection:
    conn = sqlite3.connect(data_dir / "sources" / f"{source}.db")
    conn.row_factory = sqlite3.Row
    return conn


BUREAUS = ("bureau-330000", "bureau-370000", "bureau-220000")
HOSPITALS = (
    "hospital-h33010600001",
    "hospital-h33020300002",
    "hospital-h37010200003",
    "hospital-h37020200004",
    "hospital-h22010200005",
)
PHARMACIES = ("pharmacy-p33010600101", "pharmacy-p37010200102")
