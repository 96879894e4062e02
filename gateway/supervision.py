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
from typing import Any

from connectors.supervision.scan import ScanResult, scan
from gateway.config.tables import SupervisionTable
from schema.context import Services
from security import warnings as store
from security.audit.events import supervision_event

log = logging.getLogger("medfed.supervision")


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
