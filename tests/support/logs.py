"""Capturing every log line a test causes: all loggers, all levels, each record formatted in
full (message, arguments, traceback, stack) as a handler that writes everything would."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

FULL = logging.Formatter("%(levelname)s %(name)s %(message)s")


class Captured(logging.Handler):
    """Formats each record when it is emitted (as a real handler would, so context such as
    the request id is still bound) and keeps the text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        try:
            text = FULL.format(record)
        except Exception as exc:  # a record that cannot be formatted is itself a finding
            text = f"UNFORMATTABLE {record.name} {record.msg!r} {record.args!r}: {exc!r}"
        fields = getattr(record, "fields", None)
        if fields:
            text += f" {fields!r}"
        self.lines.append(text)

    def errors(self, logger: str | None = None) -> list[logging.LogRecord]:
        return [
            r
            for r in self.records
            if r.levelno >= logging.ERROR and (logger is None or r.name.startswith(logger))
        ]

    def containing(self, value: str) -> list[str]:
        return [line for line in self.lines if value in line]


@contextlib.contextmanager
def capture_logs() -> Iterator[Captured]:
    """Every record of every logger while the block runs, at every level."""
    handler = Captured()
    root = logging.getLogger()
    old_level = root.level
    # Loggers that set their own level (or disabled propagation) would hide records.
    adjusted: list[tuple[logging.Logger, int, bool]] = []
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and (logger.level or not logger.propagate):
            adjusted.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for logger, level, propagate in adjusted:
            logger.setLevel(level)
            logger.propagate = propagate
