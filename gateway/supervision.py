"""The review after settlement as the gateway runs it: ``medfed supervise scan`` and the
server's schedule (``[supervision] scan_interval_seconds``) both scan a period of settlements
(connectors.supervision.scan), store each hit as a POST warning and write one audit event
for the run, so what the scan found is in the Merkle log beside who handled it."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.supervision.scan import ScanResult, scan
from gateway.config import ConfigError, Settings
from schema.context import Services
from security import warnings as store
from security.audit.events import supervision_event

log = logging.getLogger("medfed.supervision")


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    interval_seconds: float  # 0: no scheduled scan
    lookback_days: int  # each scheduled run scans settlements of the last N days


def schedule_settings(settings: Settings) -> ScheduleSettings:
    raw = settings.extra.get("supervision") or {}
    if not isinstance(raw, dict):
        raise ConfigError("supervision", "must be a table ([supervision])")
    for key in raw:
        if key not in ("scan_interval_seconds", "scan_lookback_days"):
            raise ConfigError(f"supervision.{key}", "is not a supervision setting")
    interval = raw.get("scan_interval_seconds", 86_400)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
        raise ConfigError("supervision.scan_interval_seconds", f"'{interval}' must be >= 0")
    days = raw.get("scan_lookback_days", 7)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
        raise ConfigError("supervision.scan_lookback_days", f"'{days}' must be 1-3660 days")
    return ScheduleSettings(float(interval), days)


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
    stored = await store.record(services.gateway_engine, result.findings)
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
                request_id=secrets.token_hex(16),
            )
        )
    return result, stored


async def scan_forever(services: Services, recorder: Any, chosen: ScheduleSettings) -> None:
    """The server's schedule: every interval, the last ``lookback_days`` of settlements."""
    if chosen.interval_seconds <= 0:
        return
    while True:
        await asyncio.sleep(chosen.interval_seconds)
        end = datetime.now()
        try:
            result, stored = await run_scan(
                services, recorder, end - timedelta(days=chosen.lookback_days), end
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
