"""Helpers shared by the type modules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import strawberry

Row = dict[str, Any]


def yuan(fen: int | None) -> Decimal | None:
    """Amounts are stored in fen (exact integers) and shown in yuan with two decimals."""
    return None if fen is None else Decimal(fen).scaleb(-2)


def iso_date(text: str) -> date:
    return date.fromisoformat(text)


def field(description: str) -> Any:
    """A data field filled by a projection; absent (None) when the query did not ask for it."""
    return strawberry.field(default=None, description=description)
