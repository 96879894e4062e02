"""Every log record of a test run, kept and searched for the victim world's personal values.

:class:`LogCapture` opens every logger at DEBUG (the root and each logger that set a level of
its own, again before each test, for loggers made meanwhile) and keeps each record as all the
text a handler could write of it: the message, the traceback of an exception, the stack, the
structured ``fields`` and the JSON line the gateway writes. :func:`leaks` then says which
records hold which value, spelt as UTF-8 or as JSON escapes.

Records of other processes (the SQLite audit writer, a served gateway) are not seen here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from dataclasses import dataclass

from gateway.edge.logs import JsonFormatter


@dataclass(frozen=True)
class Line:
    logger: str
    template: str  # the record's message before its arguments: safe to print
    text: str


def _text(record: logging.LogRecord) -> str:
    parts = [record.name, record.levelname]
    try:
        parts.append(record.getMessage())
    except Exception:  # a record whose arguments do not format is still searched raw
        parts.append(f"{record.msg!r} % {record.args!r}")
    if record.exc_info and record.exc_info[0] is not None:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    fields = getattr(record, "fields", None)
    if fields is not None:
        parts.append(json.dumps(fields, ensure_ascii=False, default=str))
    # What the gateway writes; the parts above hold more, so a record it cannot format is
    # searched all the same.
    with contextlib.suppress(Exception):
        parts.append(JsonFormatter().format(record))
    return "\n".join(parts)


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[Line] = []
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(Line(record.name, str(record.msg), _text(record)))

    def open_all(self) -> None:
        """Every logger at DEBUG (remembering the levels to restore)."""
        root = logging.getLogger()
        self._levels.setdefault("", root.level)
        root.setLevel(logging.DEBUG)
        for name, logger in list(logging.root.manager.loggerDict.items()):
            if isinstance(logger, logging.Logger):
                if logger.level not in (logging.NOTSET, logging.DEBUG):
                    self._levels.setdefault(name, logger.level)
                    logger.setLevel(logging.DEBUG)
                logger.disabled = False
        if self not in root.handlers:
            root.addHandler(self)

    def close_all(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        for name, level in self._levels.items():
            logging.getLogger(name or None).setLevel(level)
        self._levels.clear()


def spellings(value: str) -> list[str]:
    return [value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]]


def leaks(lines: list[Line], values: list[str]) -> list[tuple[Line, int]]:
    """(line, position of the value in ``values``) for every line holding one of them."""
    found = []
    for line in lines:
        for n, value in enumerate(values):
            if any(s in line.text for s in spellings(value)):
                found.append((line, n))
    return found
