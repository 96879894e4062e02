"""``medfed supervise scan`` over a small demo: the hits are printed and stored once, the run
is an audit event that ``medfed audit verify`` proves, and bad periods are one-line errors."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from connectors.supervision.rules import RULES_FILE
from gateway import cli
from gateway.config import ConfigError
from tests.support.demo import CONFIG, build, db, medfed


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


def _config_with(tmp_path: Path, **supervision: str) -> Path:
    """medfed.toml with [supervision] keys added, in a folder of its own (the files it names
    are resolved against it)."""
    lines = [f'{key} = "{value}"' for key, value in supervision.items()]
    text = CONFIG.read_text(encoding="utf-8") + "\n[supervision]\n" + "\n".join(lines) + "\n"
    path = tmp_path / "medfed.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _scan_with(config: Path, data_dir: Path, capsys) -> tuple[int, list[dict], str]:
    capsys.readouterr()
    code = cli.main(
        [
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "supervise",
            "scan",
            "--from",
            "2018-01-01",
            "--to",
            "2020-11-01",
            "--dry-run",
        ]
    )
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line], err


def test_the_rule_base_is_the_file_medfed_toml_names(demo, capsys, tmp_path):
    shipped = RULES_FILE.read_text(encoding="utf-8")
    code, lines = scan(demo, capsys, "--dry-run")
    assert code == 0 and any(h["rule"] == "CROSS_PROVINCE_OUTPATIENT" for h in lines[:-1])
    # the same rules with one switched off, named relative to the configuration's folder
    (tmp_path / "rules").mkdir()
    off = shipped.replace(
        "grade = 2\npilot_provinces", "grade = 2\nenabled = false\npilot_provinces", 1
    )
    assert off != shipped
    (tmp_path / "rules" / "mine.toml").write_text(off, encoding="utf-8")
    config = _config_with(tmp_path, rules_file="rules/mine.toml")
    code, lines, _ = _scan_with(config, demo, capsys)
    assert code == 0 and lines[:-1]
    assert not any(h["rule"] == "CROSS_PROVINCE_OUTPATIENT" for h in lines[:-1])
    # a file that is not there, or not a rule base, is one line naming the key
    for name, text in (("missing.toml", None), ("bad.toml", "[rules.NO_SUCH_RULE]\ngrade = 1\n")):
        if text is not None:
            (tmp_path / name).write_text(text, encoding="utf-8")
        code, _, err = _scan_with(_config_with(tmp_path, rules_file=name), demo, capsys)
        assert code == 2 and err.startswith("medfed: supervision.rules_file:")
        assert err.count("\n") == 1


def test_the_benefits_file_is_the_one_medfed_toml_names(tmp_path):
    from connectors.domain.benefits import BENEFITS_FILE
    from gateway.config import load_settings
    from gateway.supervision import rule_files

    shipped = BENEFITS_FILE.read_text(encoding="utf-8")
    hangzhou = '[budgets."330100"]\nper_person_year = 1400'
    assert hangzhou in shipped
    default = rule_files(load_settings(CONFIG))[0].budget_for("330106")
    (tmp_path / "benefits.toml").write_text(
        shipped.replace(hangzhou, '[budgets."330100"]\nper_person_year = 2800'), encoding="utf-8"
    )
    benefits, _ = rule_files(load_settings(_config_with(tmp_path, benefits_file="benefits.toml")))
    assert benefits.budget_for("330106") == 2 * default
    (tmp_path / "broken.toml").write_text("[regions]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^supervision\.benefits_file: "):
        rule_files(load_settings(_config_with(tmp_path, benefits_file="broken.toml")))
