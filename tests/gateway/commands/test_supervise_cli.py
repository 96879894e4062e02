"""``medfed supervise scan`` over a small demo: the hits are printed and stored once, the run
is an audit event that ``medfed audit verify`` proves, and bad periods are one-line errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.support.demo import build, medfed


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("supervise") / "data"
    build(data_dir, 150)
    return data_dir


def scan(data_dir: Path, capsys, *extra: str) -> tuple[int, list[dict]]:
    capsys.readouterr()
    code = medfed(
        data_dir, "supervise", "scan", "--from", "2018-01-01", "--to", "2020-11-01", *extra
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return code, lines


def test_the_scan_stores_each_hit_once_and_is_audited(demo, capsys):
    code, lines = scan(demo, capsys, "--dry-run")
    assert code == 0
    *hits, summary = lines
    assert summary["settlements"] > 500 and summary["hits"] == len(hits) > 0
    assert summary["stored"] == 0 and summary["dryRun"] is True
    assert {h["grade"] for h in hits} <= {1, 2, 3, 4}
    assert all(
        set(h) == {"rule", "grade", "settlementId", "source", "institution", "settledAt", "detail"}
        for h in hits
    )
    with sqlite3.connect(demo / "gateway.db") as conn:
        assert conn.execute("SELECT count(*) FROM supervision_warnings").fetchone() == (0,)

    code, lines = scan(demo, capsys, "--quiet")
    assert code == 0 and len(lines) == 1 and lines[0]["stored"] == summary["hits"]
    code, lines = scan(demo, capsys, "--quiet")
    assert lines[0]["stored"] == 0 and lines[0]["hits"] == summary["hits"]
    with sqlite3.connect(demo / "gateway.db") as conn:
        stored = conn.execute(
            "SELECT count(*), min(state), max(phase) FROM supervision_warnings"
        ).fetchone()
        assert stored == (summary["hits"], "OPEN", "POST")
    capsys.readouterr()
    assert medfed(demo, "audit", "verify") == 0


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [("2020-13-01", "2020-11-01", "--from"), ("2020-11-01", "2020-10-01", "--to must be after")],
)
def test_a_bad_period_is_one_line(demo, capsys, start, end, message):
    capsys.readouterr()
    assert medfed(demo, "supervise", "scan", "--from", start, "--to", end) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
