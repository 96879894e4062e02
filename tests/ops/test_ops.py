"""The committed dashboard and alerting rules: the JSON and YAML load, every expression
parses (promtool when it is installed, a structural check otherwise) and names only
metrics that the gateway's /metrics exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.metrics import exposition
from tests.support import REPO

ALERTS = REPO / "ops" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "ops" / "grafana" / "medfed.json"
_METRIC = re.compile(r"\b(medfed_[a-z_]+)\b")
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum")}
_DURATION = re.compile(r"^[0-9]+[smhd]$")


def exposed() -> set[str]:
    """Every sample name the metrics expose (families are listed even before a sample)."""
    names = set()
    for family in text_string_to_metric_families(exposition().decode()):
        names.add(family.name)
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ()))
    return names


def alert_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def balanced(expr: str) -> bool:
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"[^"]*"', '""', expr):  # brackets inside label values do not count
        if char in "([{":
            stack.append(char)
        elif char in closing and (not stack or stack.pop() != closing[char]):
            return False
    return not stack


@pytest.mark.parametrize("where", ["alerts", "dashboard"])
def test_every_expression_names_exposed_metrics(where):
    names = exposed()
    exprs = alert_exprs() if where == "alerts" else dashboard_exprs()
    assert exprs
    for title, expr in exprs:
        used = set(_METRIC.findall(expr))
        assert used, f"{title}: names no medfed metric"
        assert used <= names, f"{title}: {sorted(used - names)} not on /metrics"
        assert balanced(expr), f"{title}: unbalanced brackets"


def test_the_alerts_cover_what_operators_watch_and_are_well_formed():
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    for needed in (
        "MedfedErrorRate",
        "MedfedSourceDown",
        "MedfedBreakerOpen",
        "MedfedAuditLag",
        "MedfedPrivacyBudgetExhausted",
    ):
        assert needed in names
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        assert "for" not in rule or _DURATION.match(rule["for"]), rule["alert"]


def test_the_name_check_can_fail():
    # Control: a metric /metrics does not have is caught.
    assert "medfed_no_such_metric" not in exposed()
    assert not balanced("sum(rate(medfed_requests_total[5m])")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules():
    done = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
