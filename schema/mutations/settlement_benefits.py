"""The benefits side of recordSettlement: the facts a split depends on (the person's enrolment
and earlier settlements of the year at the insured province, from the person's rows that the
claims review reads too; the visit's diagnoses; the institution's level), the split computed by
``connectors.domain.benefits``, and a submitted split compared with it field by field.

Cross-province care is priced by the treatment place's catalogue and paid by the insured
place's benefits; an internet revisit is paid exactly as the offline visit of its disease."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry

from connectors.domain import benefits as b
from connectors.domain import codes
from connectors.sql.queries import Row
from connectors.supervision.facts import PersonRows
from schema.mutations import lookups
from schema.mutations import validation as v
from schema.types.common import yuan

MAX_ITEMS = 500
PARTS = (("fundPay", "fund_fen"), ("accountPay", "account_fen"), ("cashPay", "cash_fen"))


@strawberry.type(description="How the insured place's benefits split this settlement.")
class SettlementBenefits:
    region: str = strawberry.field(description="The benefits entry applied (参保地待遇).")
    scheme: str | None = strawberry.field(
        description="inpatient, outpatient or chronic; null when the fund pays nothing."
    )
    deductible: Decimal = strawberry.field(description="The part of the deductible this bill bore.")
    ratio: Decimal = strawberry.field(description="The fund's share of the payable amount.")
    capped: bool = strawberry.field(description="The annual cap cut the fund's share.")
    notes: list[str] = strawberry.field(description="Why the fund paid less or nothing.")


def items_of(p: v.Problems, raw: list[Any] | None) -> list[b.Item] | None:
    if raw is None:
        return None
    if len(raw) > MAX_ITEMS:
        p.add(["input", "items"], f"must list at most {MAX_ITEMS} items")
        return None
    out: list[b.Item] = []
    for n, item in enumerate(raw):
        code = item.code
        if not (1 <= len(code) <= 32 and code.isascii() and code.isalnum()):
            p.add(["input", "items", n, "code"], "must be 1-32 letters and digits")
        fen = v.money(p, ["input", "items", n, "amount"], item.amount)
        if fen is not None:
            out.append(b.Item(code, item.kind.value, fen))
    return out if len(out) == len(raw) else None


def bill_of(
    p: v.Problems,
    catalogue: b.Catalogue | None,
    items: list[b.Item] | None,
    fen: dict[str, int | None],
) -> b.Bill | None:
    """The bill: priced from the items by the treatment place's catalogue (a submitted total
    or inPolicy is then checked), or taken as submitted when no items are given."""
    if items is None:
        for name, column in (("total", "total_fen"), ("inPolicy", "in_policy_fen")):
            if fen[column] is None and not p.at("input", name):
                p.add(["input", name], "is required when no items are given")
        if fen["total_fen"] is None or fen["in_policy_fen"] is None:
            return None
        return b.Bill(fen["total_fen"], fen["in_policy_fen"])
    if catalogue is None:
        p.add(["input", "treatmentRegion"], "no catalogue of this province in the benefits file")
        return None
    bill = b.price(catalogue, items)
    for name, column, value in (
        ("total", "total_fen", bill.total_fen),
        ("inPolicy", "in_policy_fen", bill.in_policy_fen),
    ):
        if fen[column] is not None and fen[column] != value:
            p.add(
                ["input", name], f"differs from the items priced by the catalogue ({yuan(value)})"
            )
    return bill


def _enrolment(rows: list[Row], insured: str, day: Any) -> Row | None:
    for row in sorted(rows, key=lambda r: r["begin_date"], reverse=True):
        if (
            row["pool_admdvs"] == insured
            and row["status"] != "SUSPENDED"
            and row["begin_date"] <= day
            and (row["end_date"] is None or day <= row["end_date"])
        ):
            return row
    return None


def compute_split(
    ctx: Any,
    p: v.Problems,
    rows: PersonRows,
    *,
    bill: b.Bill,
    insured: str,
    medical_type: str,
    settled_at: datetime,
    setl_id: str,
    visit: Row,
    institution: Row,
    cross: bool,
) -> tuple[b.Split, b.RegionBenefits] | None:
    benefits: b.Benefits = ctx.services.benefits
    region = benefits.region_for(insured)
    if region is None:
        p.add(["input", "insuredRegion"], "has no entry in the benefits file")
        return None
    insured_bureau = lookups.bureau_of(ctx, codes.province_of(insured))
    if insured_bureau is None:
        p.add(["input", "insuredRegion"], "no bureau of this province is part of the federation")
        return None
    enrolments = [e for e in rows.enrolments if e["_source"] == insured_bureau.name]
    # Benefits are those of the enrolment when care began (an admission's, for a stay).
    enrolment = _enrolment(enrolments, insured, visit["begin_date"])
    if enrolment is None:
        p.add(["input", "insuredRegion"], "the person had no enrolment here when the visit began")
        return None
    # The year's earlier settlements insured here: at the insured bureau and the platform.
    earlier = b.earlier_from_rows(insured, rows.settlements, settled_at, setl_id)
    split = b.compute(
        region,
        bill,
        insurance_type=enrolment["insutype"],
        level=institution["level"],
        medical_type=medical_type,
        diagnoses=[d for d in visit["diagnosis_codes"].split(",") if d],
        cross_province=cross,
        account_balance_fen=enrolment["account_balance_fen"],
        earlier=earlier,
    )
    return split, region


def check_submitted(
    p: v.Problems, region: b.RegionBenefits, split: b.Split, fen: dict[str, int | None]
) -> None:
    """Each submitted part that differs from the rule is a problem naming the rule's amount."""
    submitted = {
        "fundPay": fen["fund_pay_fen"],
        "accountPay": fen["acct_pay_fen"],
        "cashPay": fen["cash_pay_fen"],
    }
    for name, attr in PARTS:
        want = getattr(split, attr)
        if submitted[name] is not None and submitted[name] != want:
            p.add(
                ["input", name],
                f"differs from the benefits of {region.code} ({yuan(want)} by rule)",
            )


def describe(region: b.RegionBenefits, split: b.Split) -> SettlementBenefits:
    return SettlementBenefits(
        region=region.code,
        scheme=split.scheme,
        deductible=yuan(split.deductible_fen),
        ratio=split.ratio,
        capped=split.capped,
        notes=list(split.notes),
    )
