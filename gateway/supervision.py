"""The review after settlement as the gateway runs it: ``medfed supervise scan`` and the
server's schedule (``[supervision] scan_interval_seconds``) both scan a period of settlements
(connectors.supervision.scan), store each hit as a POST warning and write one audit event
for the run, so what the scan found is in the Merkle log beside who handled it."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.domain.benefits import Benefits, BenefitsError, default_benefits, load_benefits
from connectors.supervision.rules import RuleBase, RulesError, default_rules, load_rules
from connectors.supervision.scan import ScanResult, scan
from gateway.config import ConfigError, Settings
from gateway.config.tables import SupervisionTable
from schema.context import Services
from security import warnings as store
from security.audit.events import supervision_event

log = logging.getLogger("medfed.supervision")


def _chosen(settings: Settings, raw: str | None) -> Path | None:
    if raw is None:
        return None
    base = settings.config_path.parent if settings.config_path else Path.cwd()
    return Path(raw) if Path(raw).is_absolute() else base / raw


def rule_files(settings: Settings) -> tuple[Benefits, RuleBase]:
    """The benefits file and the claims rule base ``[supervision]`` names (the shipped ones
    when unset), parsed strictly; a problem is one ConfigError naming the key."""
    table = settings.config.supervision
    benefits_path = _chosen(settings, table.benefits_file)
    rules_path = _chosen(settings, table.rules_file)
    try:
        benefits = load_benefits(benefits_path) if benefits_path else default_benefits()
    except BenefitsError as exc:
        raise ConfigError("supervision.benefits_file", str(exc)) from None
    try:
        rules = load_rules(rules_path) if rules_path else default_rules()
    except RulesError as exc:
        raise ConfigError("supervision.rules_file", str(exc)) from None
    return benefits, rules


async def run_scan(
    services: Services, recorder: Any, start: datetime, end: datetime, *, keep: bool = True
) -> tuple[ScanResult, list[str]]:
    """Scan ``[start, end)``; store the hits as warnings and audit the run unless ``keep`` is
    false (a dry run stores and audits nothing)."""
    registry = services.registry
    plat = registry.of_kind("platform")
    result = await scan(
        registry.of_kind("bureau"),
        plat[0] if plat else None,
        services.claims_rules,
        services.benefits,
        start,
        end,
        registry.of_kind("pharmacy"),
    )
    if not keep or services.gateway_engine is None:
        return result, []
    request_id = secrets.token_hex(16)
    # The new hits are opened by events of their own, carrying their facts (no log, none).
    stored = await store.record(
        services.gateway_engine, recorder, result.findings, request_id=request_id
    )
    if recorder is not None:
        await recorder.record(
            supervision_event(
                principal=None,
                purpose="FUND_SUPERVISION",
                action="SCAN",
                supervision={
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "settlements": result.settlements,
                    "hits": dict(Counter(f.rule for f in result.findings)),
                    "stored": len(stored),
                },
                request_id=request_id,
            )
        )
    return result, stored


async def scan_forever(services: Services, recorder: Any, chosen: SupervisionTable) -> None:
    """The server's schedule: every interval, the last ``scan_lookback_days`` of settlements."""
    if chosen.scan_interval_seconds <= 0:
        return
    while True:
        await asyncio.sleep(chosen.scan_interval_seconds)
        end = datetime.now()
        try:
            result, stored = await run_scan(
                services, recorder, end - timedelta(days=chosen.scan_lookback_days), end
            )
            log.info(
                "claims scan: %d settlements, %d hits, %d new warnings",
                result.settlements,
                len(result.findings),
                len(stored),
            )
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed run is logged and the next one tries again
            log.exception("claims scan failed")
