"""The ``[audit]`` table of medfed.toml: on/off, the log's tuning, and ``[audit.alerts]``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from typing import Any

from security.audit.log import AuditLogConfig

# Keys of [audit] that are not the log's own tuning.
GATEWAY_KEYS = ("enabled", "alerts", "reconcile", "checkpoint_dir", "witnesses")
DEFAULT_CHECKPOINT_DIR = "audit"  # under the data directory unless absolute


class SettingError(ValueError):
    """A setting of ``[audit]`` is wrong; ``key`` names it (``audit.reconcile.after_seconds``)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def seconds(key: str, value: Any, low: float, high: float) -> float:
    """A strict number of seconds: a wrong type or range names the key."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingError(key, f"'{value}' must be a number of seconds")
    if not low <= value <= high:
        raise SettingError(key, f"{value} must be between {low:g} and {high:g} seconds")
    return float(value)


@dataclass(frozen=True)
class ReconcileSettings:
    """``[audit.reconcile]``: when intents without an outcome are settled."""

    # An intent of another host's process is settled once this old: longer than any
    # request's deadline, so the process cannot still be writing.
    after_seconds: float = 300.0
    every_seconds: float = 60.0  # how often a running gateway looks for such intents

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ReconcileSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise SettingError(
                f"audit.reconcile.{sorted(unknown)[0]}", "is not a reconcile setting"
            )
        return cls(
            **{
                key: seconds(f"audit.reconcile.{key}", value, 1, 86_400)
                for key, value in raw.items()
            }
        )


@dataclass(frozen=True)
class AlertRules:
    # Every break-glass opens an alert with the request's own event; this key may only say so.
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
        if rules.break_glass is not True:
            raise ValueError(
                "audit.alerts.break_glass: every break-glass opens an alert; it cannot be "
                "turned off"
            )
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
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    # Where the file of signed checkpoints goes (relative: under the data directory).
    checkpoint_dir: str = DEFAULT_CHECKPOINT_DIR
    witnesses: tuple[Any, ...] = ()  # security.audit.outside.WitnessConfig

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> AuditSettings:
        raw = dict(raw or {})
        enabled = raw.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError(f"audit.enabled '{enabled}' must be true or false")
        alerts = raw.pop("alerts", {})
        if not isinstance(alerts, Mapping):
            raise ValueError("audit.alerts must be a table")
        reconcile = raw.pop("reconcile", {})
        if not isinstance(reconcile, Mapping):
            raise SettingError("audit.reconcile", "must be a table")
        checkpoint_dir = raw.pop("checkpoint_dir", DEFAULT_CHECKPOINT_DIR)
        if not isinstance(checkpoint_dir, str) or not checkpoint_dir:
            raise SettingError(
                "audit.checkpoint_dir", f"'{checkpoint_dir}' must be a directory path"
            )
        from security.audit.outside import parse_witnesses

        witnesses = tuple(parse_witnesses(raw.pop("witnesses", None)))
        _check_cadence(raw)
        return cls(
            enabled=enabled,
            log=AuditLogConfig.from_mapping(raw),
            alerts=AlertRules.from_mapping(alerts),
            reconcile=ReconcileSettings.from_mapping(reconcile),
            checkpoint_dir=checkpoint_dir,
            witnesses=witnesses,
        )


def _check_cadence(raw: Mapping[str, Any]) -> None:
    """The unsigned tail's bounds, strictly: they are what a cut tail can hide."""
    if "checkpoint_every" in raw:
        every = raw["checkpoint_every"]
        if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= 100_000:
            raise SettingError("audit.checkpoint_every", f"'{every}' must be an integer 1-100000")
    if "checkpoint_seconds" in raw:
        seconds("audit.checkpoint_seconds", raw["checkpoint_seconds"], 0.1, 3600)


def log_config(raw: Mapping[str, Any] | None) -> AuditLogConfig:
    """The log's own settings from an ``[audit]`` table that may hold gateway keys too."""
    return AuditLogConfig.from_mapping(
        {k: v for k, v in dict(raw or {}).items() if k not in GATEWAY_KEYS}
    )
