"""The ``[audit]`` table of medfed.toml: on/off, the log's tuning, ``[audit.alerts]``,
``[audit.reconcile]`` and ``[[audit.witnesses]]``.

The log's own keys (``checkpoint_every``, ``max_batch`` …) sit flat in ``[audit]`` beside the
gateway's, so :class:`AuditSettings` extends :class:`AuditLogConfig` and :attr:`AuditSettings.log`
hands the log only its part.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PositiveInt, field_validator

from security.audit.log import AuditLogConfig
from security.tables import NonEmpty, Table

DEFAULT_CHECKPOINT_DIR = "audit"  # under the data directory unless absolute
_LOG_KEYS = tuple(AuditLogConfig.model_fields)

ReconcileSeconds = Annotated[float, Field(ge=1, le=86_400)]


class ReconcileSettings(Table):
    """``[audit.reconcile]``: when intents without an outcome are settled."""

    # An intent of another host's process is settled once this old: longer than any
    # request's deadline, so the process cannot still be writing.
    after_seconds: ReconcileSeconds = 300.0
    every_seconds: ReconcileSeconds = 60.0  # how often a running gateway looks for such intents


def _hours(text: str) -> tuple[time, time] | None:
    if not text:
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"'{text}' is not HH:MM-HH:MM") from None
    return start, end


class AlertRules(Table):
    # Every break-glass opens an alert with the request's own event; this key may only say so.
    break_glass: bool = True
    volume_persons: PositiveInt = 50  # distinct persons one principal may read per window
    volume_window_seconds: PositiveInt = 3600
    probing_denials: PositiveInt = 5  # denied accesses to unrelated persons per window
    probing_window_seconds: PositiveInt = 600
    # Working hours as "HH:MM-HH:MM" in `timezone`; empty disables the rule.
    hours: str = ""
    timezone: NonEmpty = "Asia/Shanghai"

    @field_validator("break_glass", mode="before")
    @classmethod
    def _always(cls, value: object) -> object:
        if value is not True:
            raise ValueError("every break-glass opens an alert; it cannot be turned off")
        return value

    @field_validator("hours")
    @classmethod
    def _working_hours(cls, value: str) -> str:
        _hours(value)  # fail at start-up, not at the first event
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return value

    def working_hours(self) -> tuple[time, time] | None:
        return _hours(self.hours)


class WitnessEntry(Table):
    """One ``[[audit.witnesses]]``: a witness this log's checkpoints are sent to."""

    name: NonEmpty
    url: NonEmpty
    key: NonEmpty  # the witness's vkey

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        loopback = ("http://127.0.0.1", "http://localhost", "http://[::1]")
        if not value.startswith(("https://", *loopback)):
            raise ValueError("must be https:// (plain http only on loopback)")
        return value.rstrip("/")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        from security.audit.cosign import WitnessKey
        from security.audit.signer import AuditKeyError

        try:
            WitnessKey.parse(value)
        except AuditKeyError as exc:
            raise ValueError(str(exc)) from None
        return value


class AuditSettings(AuditLogConfig):
    enabled: bool = True
    alerts: AlertRules = AlertRules()
    reconcile: ReconcileSettings = ReconcileSettings()
    # Where the file of signed checkpoints goes (relative: under the data directory).
    checkpoint_dir: NonEmpty = DEFAULT_CHECKPOINT_DIR
    witnesses: list[WitnessEntry] = Field(default_factory=list)

    @property
    def log(self) -> AuditLogConfig:
        return AuditLogConfig(**{key: getattr(self, key) for key in _LOG_KEYS})
