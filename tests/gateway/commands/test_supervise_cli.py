"""``medfed supervise scan`` over a small demo: the hits are printed and stored once, the run
is an audit event that ``medfed audit verify`` proves, and bad periods are one-line errors."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.demo import build, db, medfed


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
    # no one of these 150 is in two places at once (the planted held bed is one in 2,500)
    assert not [h for h in hits if h["rule"] == "SIMULTANEOUS_CARE"]
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


def test_a_pharmacy_dispensing_before_the_review_is_found(demo, capsys, tmp_path):
    """The unreviewed-prescription rule reads the pharmacy's dispensings of circulated
    prescriptions: one moved before its approval is a hit naming the pharmacy; as built,
    every dispensing follows its approval and none is."""
    code, lines = scan(demo, capsys, "--dry-run")
    assert code == 0
    assert not [h for h in lines[:-1] if "dispensed at" in h.get("detail", "")]
    copy = tmp_path / "data"
    shutil.copytree(demo, copy)
    with db(copy, "bureau-330000") as bureau:
        rx = bureau.execute(
            "SELECT p.rx_id, p.reviewed_at, p.circulated_to FROM prescriptions p "
            "JOIN settlements s ON s.mdtrt_id = p.mdtrt_id WHERE p.circulated_to IS NOT NULL "
            "AND p.review_status = 'APPROVED' AND s.setl_time >= '2018-01-01' "
            "AND s.setl_time < '2020-11-01' ORDER BY p.rx_id LIMIT 1"
        ).fetchone()
    assert rx is not None, "the demo circulates prescriptions"
    pharmacy = f"pharmacy-{rx['circulated_to'].lower()}"
    with db(copy, pharmacy) as conn:
        changed = conn.execute(
            "UPDATE dispensings SET dispensed_at = datetime(?, '-1 hour') WHERE rx_id = ?",
            (rx["reviewed_at"], rx["rx_id"]),
        ).rowcount
    assert changed == 1
    code, lines = scan(copy, capsys, "--dry-run")
    found = [h for h in lines[:-1] if "dispensed at" in h["detail"]]
    assert [h["rule"] for h in found] == ["UNREVIEWED_PRESCRIPTION"]
    assert rx["rx_id"] in found[0]["detail"] and rx["circulated_to"] in found[0]["detail"]
