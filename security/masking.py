"""Masking formats for personal values shown in part (MASK decisions).

A mask never shows the whole value, and the ID-number and phone masks keep a minimum of
characters hidden: a short value gives up its leading characters first, then trailing ones,
rather than showing more than the format allows (``1234567`` is not a phone mask of itself).
"""

from __future__ import annotations

from datetime import date

ID_HIDDEN = 8  # an ID number always hides at least its eight birth-date digits' worth
PHONE_HIDDEN = 4  # a phone number always hides at least four digits


def _keep_ends(value: str, head: int, tail: int, hidden: int) -> str:
    """``value`` with ``head`` leading and ``tail`` trailing characters shown and the rest
    starred, but never fewer than ``hidden`` characters starred (and never the whole value
    shown): the head shrinks first, then the tail."""
    shown = max(0, len(value) - max(hidden, 1))
    tail = min(tail, shown)
    head = min(head, shown - tail)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_id_number(value: str) -> str:
    """``330106199001011234`` -> ``330***********1234``: region of issue and last four;
    a 15-digit number -> ``330********1234``; shorter values show less (at least eight hidden)."""
    return _keep_ends(value, 3, 4, ID_HIDDEN)


def mask_phone(value: str) -> str:
    """``13812345678`` -> ``138****5678``; an 8-digit line -> ``****5678``; a 7-digit one
    -> ``****567`` (at least four digits hidden)."""
    return _keep_ends(value, 3, 4, PHONE_HIDDEN)


def mask_name(value: str) -> str:
    """``张三`` -> ``张*``; ``欧阳娜娜`` -> ``欧***``: surname character only; a one-character
    name shows nothing (``张`` -> ``*``)."""
    if len(value) <= 1:
        return "*" * len(value)
    return value[:1] + "*" * (len(value) - 1)


def mask_birth_date(value: date) -> date:
    """Birth date to year: the first of January of the birth year."""
    return date(value.year, 1, 1)


def mask_text(_value: str) -> str:
    """Free text shows nothing of itself, not even its length."""
    return "***"
