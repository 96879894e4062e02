"""Mutual recognition of test results (检查检验结果互认).

A result is recognised by other designated institutions when its item is in the recognition
catalogue, the performing institution is at least the item's minimum level, and the result is
still within the item's validity window. The catalogue is configurable (``[recognition]`` in
``medfed.toml``); the defaults follow common provincial practice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import PositiveInt

from security.tables import NonEmpty, Table

LEVEL_RANK = {"NONE": 0, "PRIMARY": 1, "SECONDARY": 2, "TERTIARY": 3}


@dataclass(frozen=True)
class CatalogueItem:
    code: str  # LOINC code for lab items; modality (CT, MR, DR, US) for imaging
    min_level: str
    validity_days: int


class RecognitionItem(Table):
    code: NonEmpty
    min_level: Literal["NONE", "PRIMARY", "SECONDARY", "TERTIARY"]
    validity_days: PositiveInt


class RecognitionSettings(Table):
    """``[[recognition.items]] code, min_level, validity_days``; absent means the defaults."""

    items: list[RecognitionItem] | None = None


@dataclass(frozen=True)
class Recognition:
    recognized: bool
    reason: str
    valid_until: datetime | None


DEFAULT_ITEMS = (
    # lab (LOINC): routine chemistry and blood counts are recognised widely
    CatalogueItem("718-7", "SECONDARY", 30),  # haemoglobin
    CatalogueItem("6690-2", "SECONDARY", 30),  # leukocytes
    CatalogueItem("777-3", "SECONDARY", 30),  # platelets
    CatalogueItem("2345-7", "SECONDARY", 14),  # glucose
    CatalogueItem("4548-4", "SECONDARY", 90),  # HbA1c
    CatalogueItem("2093-3", "SECONDARY", 90),  # cholesterol
    CatalogueItem("2571-8", "SECONDARY", 90),  # triglycerides
    CatalogueItem("2160-0", "SECONDARY", 30),  # creatinine
    CatalogueItem("1742-6", "SECONDARY", 30),  # ALT
    CatalogueItem("1920-8", "SECONDARY", 30),  # AST
    # imaging: by modality
    CatalogueItem("CT", "SECONDARY", 180),
    CatalogueItem("MR", "TERTIARY", 180),
    CatalogueItem("DR", "SECONDARY", 90),
    CatalogueItem("US", "SECONDARY", 30),
)


class RecognitionCatalogue:
    def __init__(self, items: tuple[CatalogueItem, ...] = DEFAULT_ITEMS) -> None:
        self.items = {i.code: i for i in items}

    @classmethod
    def from_settings(cls, table: RecognitionSettings) -> RecognitionCatalogue:
        if table.items is None:
            return cls()
        return cls(tuple(CatalogueItem(i.code, i.min_level, i.validity_days) for i in table.items))

    def assess(
        self, item_code: str, institution_level: str | None, reported_at: datetime, now: datetime
    ) -> Recognition:
        item = self.items.get(item_code)
        if item is None:
            return Recognition(False, "NOT_IN_CATALOGUE", None)
        valid_until = reported_at + timedelta(days=item.validity_days)
        if institution_level is None:
            return Recognition(False, "INSTITUTION_UNKNOWN", valid_until)
        if LEVEL_RANK.get(institution_level, 0) < LEVEL_RANK[item.min_level]:
            return Recognition(False, "INSTITUTION_LEVEL_TOO_LOW", valid_until)
        if now > valid_until:
            return Recognition(False, "EXPIRED", valid_until)
        return Recognition(True, "RECOGNIZED", valid_until)
