"""Cross-region filings (备案) and the monthly clearing between provinces (清算)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import strawberry

from schema.enums import FilingCategory, FilingChannel, FilingStatus, enum_or_none
from schema.projection import F, Projection, col, enc
from schema.types.common import Row, field, yuan


@strawberry.type(
    description="A filing (备案) that lets an insured person be treated in "
    "another region with direct settlement."
)
class Filing:
    filing_id: strawberry.ID | None = field("Filing identifier at the national platform.")
    person_id: strawberry.ID | None = field("The filed person's pseudonymous identifier.")
    name: str | None = field("Name of the filed person (姓名).")
    insured_region: str | None = field("Insured place (参保地).")
    destination: str | None = field("Destination region (就医地), city or province code.")
    category: FilingCategory | None = field("Filing category (备案类别).")
    channel: FilingChannel | None = field("Where it was filed (备案渠道).")
    status: FilingStatus | None = field("Filing status.")
    filed_at: datetime | None = field("When it was filed.")
    valid_from: date | None = field("First day it applies.")
    valid_until: date | None = field("Last day it applies; null for open-ended.")
    _row: strawberry.Private[Row] = None
    _ref: strawberry.Private[str] = None


FILING = Projection(
    "Filing",
    Filing,
    [
        F("filingId", "filing_id", col("filing_id"), personal=False),
        F("personId", "person_id", col("person_ref")),
        F("name", "name", enc("filings", "name_enc", "filing_id")),
        F("insuredRegion", "insured_region", col("insuplc_admdvs")),
        F("destination", "destination", col("mdtrtarea_admvs")),
        F("category", "category", col("category", lambda v: enum_or_none(FilingCategory, v))),
        F("channel", "channel", col("channel", lambda v: enum_or_none(FilingChannel, v))),
        F("status", "status", col("status", lambda v: enum_or_none(FilingStatus, v))),
        F("filedAt", "filed_at", col("filed_at")),
        F("validFrom", "valid_from", col("valid_from")),
        F("validUntil", "valid_until", col("valid_until")),
    ],
    lambda row: row["person_ref"],
)


@strawberry.type(description="What the cross-province settlements a clearing covers add up to.")
class ClearingReconciliation:
    settlements: int = strawberry.field(description="Settlements of the month and provinces.")
    total: Decimal = strawberry.field(description="Their total cost in yuan.")
    fund_pay: Decimal = strawberry.field(description="Their fund payment in yuan.")
    matches: bool = strawberry.field(description="The clearing agrees with them.")
    differences: list[str] = strawberry.field(
        description="Each figure of the clearing that differs from its settlements."
    )


@strawberry.type(
    description="What one province owes another for a month of cross-province "
    "settlements (清算). Aggregate data, no persons."
)
class Clearing:
    clearing_id: strawberry.ID = strawberry.field(description="Clearing identifier.")
    month: str = strawberry.field(description="Month, YYYY-MM.")
    payer_province: str = strawberry.field(description="Insured province, which pays.")
    payee_province: str = strawberry.field(description="Treatment province, which is paid.")
    settlement_count: int = strawberry.field(description="Settlements cleared.")
    total: Decimal = strawberry.field(description="Total cost in yuan.")
    fund_pay: Decimal = strawberry.field(description="Fund payment in yuan.")
    status: str = strawberry.field(
        description="OPEN, CLEARED, or MISSING: the platform holds this month's settlements "
        "between the two provinces but no clearing (clearingId none:YYYY-MM:PPQQ, amounts 0)."
    )
    reconciliation: ClearingReconciliation | None = strawberry.field(
        default=None, description="Checked against the platform's cross-province settlements."
    )

    @classmethod
    def from_row(cls, row: Row) -> Clearing:
        return cls(
            clearing_id=row["clearing_id"],
            month=row["month"],
            payer_province=row["payer_province"],
            payee_province=row["payee_province"],
            settlement_count=row["settlement_count"],
            total=yuan(row["total_fen"]),
            fund_pay=yuan(row["fund_pay_fen"]),
            status=row["status"],
        )
