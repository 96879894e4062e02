"""The ``[audit]`` table of medfed.toml: on/off, the log's tuning, and ``[audit.alerts]``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from typing import Any

from security.audit.log import AuditLogConfig

# Keys of [audit] that are not the log's own tuning.
GATEWAY_KEYS = ("enabled", "alerts")


@dataclass(frozen=True)
class AlertRules:
    break_glass: bool = True
    volume_persons: int = 50  # distinct persons one principal may read per window
    volume_window_seconds: int = 3600
    probing_denials: int = 5  # denied accesses to unrelated persons per window
    probing_window_seconds: int = 600
    # Working hours as "HH:MM-HH:MM" in `timezone`; empty disables the rule.
    hours: str = ""
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> AlertRules:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"audit.alerts.{sorted(unknown)[0]} is not an alert setting")
        rules = cls(**dict(raw))
        rules.working_hours()  # fail at start-up, not at the first event
        return rules

    def working_hours(self) -> tuple[time, time] | None:
        if not self.hours:
            return None
        try:
            start, end = (time.fromisoformat(part.strip()) for part in self.hours.split("-"))
        except ValueError:
            raise ValueError(f"audit.alerts.hours '{self.hours}' is not HH:MM-HH:MM") from None
        return start, end


@dataclass(frozen=True)
class AuditSettings:
    enabled: bool = True
    log: AuditLogConfig = field(default_factory=AuditLogConfig)
    alerts: AlertRules = field(default_factory=AlertRules)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> AuditSettings:
        raw = dict(raw or {})
        enabled = raw.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError(f"audit.enabled '{enabled}' must be true or false")
        alerts = raw.pop("alerts", {})
        if not isinstance(alerts, Mapping):
            raise ValueError("audit.alerts must be a table")
        return cls(
            enabled=enabled,
            log=AuditLogConfig.from_mapping(raw),
            alerts=AlertRules.from_mapping(alerts),
        )


def log_config(raw: Mapping[str, Any] | None) -> AuditLogConfig:
    """The log's own settings from an ``[audit]`` table that may hold gateway keys too."""
    return AuditLogConfig.from_mapping(
        {k: v for k, v in dict(raw or {}).items() if k not in GATEWAY_KEYS}
    )
