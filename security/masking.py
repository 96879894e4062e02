"""Masking formats for personal values shown in part (MASK decisions)."""

from __future__ import annotations

from datetime import date


def mask_id_number(value: str) -> str:
    """``330106199001011234`` -> ``330***********1234``: region of issue and last four."""
    if len(value) < 8:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    """``13812345678`` -> ``138****5678``."""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str) -> str:
    """``张三`` -> ``张*``; ``欧阳娜娜`` -> ``欧***``: surname character only."""
    return value[:1] + "*" * max(1, len(value) - 1) if value else value


def mask_birth_date(value: date) -> date:
    """Birth date to year: the first of January of the birth year."""
    return date(value.year, 1, 1)


def mask_text(_value: str) -> str:
    return "***"
