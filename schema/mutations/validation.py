"""Checking a mutation's input in full before anything is written.

Every check adds to one :class:`Problems` list instead of raising, so the caller learns
every bad field at once (one ``BAD_USER_INPUT`` error whose ``extensions.problems`` holds
each path and reason). Reasons never repeat a submitted personal value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from connectors.domain import codes
from schema.errors import bad_input

PathPart = str | int
PERSON_ID_RE = re.compile(r"^[0-9a-f]{32}$")
SOURCE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,24}$")

# Sources store wall-clock times of China Standard Time without a zone; an input with an
# offset is converted to it, an input without one is taken to be in it already.
BEIJING = timezone(timedelta(hours=8), "CST")
# A reporting system's clock may run a little ahead of ours; more than this is "future".
CLOCK_SKEW = timedelta(minutes=5)
MAX_FEN = 10**12  # 10 billion yuan: far beyond any real bill, well inside BigInteger


class Problems:
    """The problems found in one input, each at a path relative to the arguments."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, path: Sequence[PathPart], reason: str) -> None:
        self.items.append({"path": list(path), "reason": reason})

    def at(self, *path: PathPart) -> bool:
        """Whether a problem was already found at ``path`` (later checks that build on the
        field skip it, so each field is reported once, for its first fault)."""
        return any(p["path"] == list(path) for p in self.items)

    def raise_if_any(self, operation: str) -> None:
        if not self.items:
            return
        listed = "; ".join(
            f"{'.'.join(str(s) for s in p['path'])}: {p['reason']}" for p in self.items
        )
        raise bad_input(
            f"{operation}: the input has {len(self.items)} problem(s): {listed}", self.items
        )


def beijing(moment: datetime) -> datetime:
    """``moment`` as a naive China Standard Time wall-clock time, as sources store it."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(BEIJING).replace(tzinfo=None)


def beijing_now(now: datetime) -> datetime:
    """The request's ``now`` (naive local time of this machine) in China Standard Time."""
    return now.astimezone(BEIJING).replace(tzinfo=None)


def text(
    problems: Problems,
    path: Sequence[PathPart],
    value: str | None,
    max_len: int,
    required: bool = True,
) -> str | None:
    """A trimmed free-text value, required unless told otherwise."""
    if value is None or not value.strip():
        if required:
            problems.add(path, "is required and must not be blank")
        return None
    value = value.strip()
    if len(value) > max_len:
        problems.add(path, f"must be at most {max_len} characters")
        return None
    return value


def absent(problems: Problems, path: Sequence[PathPart], value: object, why: str) -> None:
    if value is not None:
        problems.add(path, f"must be left out {why}")


def region(problems: Problems, path: Sequence[PathPart], code: str) -> str | None:
    if problem := codes.validate_region(code):
        problems.add(path, problem)
        return None
    return code


def institution(problems: Problems, path: Sequence[PathPart], code: str) -> str | None:
    """A hospital (H…) or pharmacy (P…) code in the national format."""
    check = codes.validate_pharmacy if code.startswith("P") else codes.validate_institution
    if problem := check(code):
        problems.add(
            path, problem.replace("an institution code", "an institution or pharmacy code")
        )
        return None
    return code


def person_id(problems: Problems, path: Sequence[PathPart], value: str) -> str | None:
    if not PERSON_ID_RE.match(value):
        problems.add(path, "is not a personId (32 lowercase hexadecimal characters)")
        return None
    return value


def source_id(problems: Problems, path: Sequence[PathPart], value: str) -> str | None:
    """An identifier issued by a source (visit, settlement, filing)."""
    if not SOURCE_ID_RE.match(value):
        problems.add(path, "must be 1-24 characters from A-Z, a-z, 0-9, '_' and '-'")
        return None
    return value


def not_future(
    problems: Problems, path: Sequence[PathPart], moment: datetime, now: datetime
) -> datetime:
    local = beijing(moment)
    if local > now + CLOCK_SKEW:
        problems.add(path, "must not be in the future")
    return local


def money(problems: Problems, path: Sequence[PathPart], amount: Decimal) -> int | None:
    """An amount in yuan as exact fen, or None after adding why it is not one."""
    if not amount.is_finite():
        problems.add(path, "must be a finite amount in yuan")
        return None
    if amount < 0:
        problems.add(path, "must not be negative")
        return None
    fen = amount.scaleb(2)
    if fen != fen.to_integral_value():
        problems.add(path, "must have at most two decimal places (fen)")
        return None
    if fen > MAX_FEN:
        problems.add(path, "is larger than any amount medfed accepts")
        return None
    return int(fen)


def covers(area: str, code: str) -> bool:
    """Whether region ``code`` lies in ``area``: a province (330000) covers its cities and
    districts, a city (330100) its districts, a district only itself."""
    if area.endswith("0000"):
        return code[:2] == area[:2]
    if area.endswith("00"):
        return code[:4] == area[:4]
    return code == area


def province(code: str) -> str:
    return codes.province_of(code)
