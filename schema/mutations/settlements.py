"""recordSettlement: a settlement centre or insurance agency records the settlement (结算)
of a visit, at the bureau of the treatment province, or at the national platform when the
person is insured in another province (跨省直接结算, which needs a filing)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from connectors.domain import codes
from connectors.sql import writers
from connectors.sql.models import bureau, pharmacy, platform
from connectors.sql.queries import fetch_in
from schema import anchoring
from schema.enums import VisitType
from schema.errors import forbidden
from schema.mutations import lookups
from schema.mutations import settlement_benefits as sb
from schema.mutations import settlement_review as sr
from schema.mutations import validation as v
from schema.mutations.enums import SettlementItemKind
from schema.mutations.idempotent import Created, IdempotentCall, Target
from schema.selection import requested
from schema.types.records import SETTLEMENT, Settlement
from security.identity.roles import Role

OPERATION = "recordSettlement"
# (GraphQL name, input attribute, column in fen)
AMOUNTS = (
    ("total", "total", "total_fen"),
    ("inPolicy", "in_policy", "in_policy_fen"),
    ("fundPay", "fund_pay", "fund_pay_fen"),
    ("accountPay", "account_pay", "acct_pay_fen"),
    ("cashPay", "cash_pay", "cash_pay_fen"),
)


@strawberry.input(description="One item of the bill, priced by the treatment place's catalogue.")
class SettlementItemInput:
    code: str = strawberry.field(description="National drug or service code (医保编码).")
    kind: SettlementItemKind = strawberry.field(description="Drug, service or delivery fee.")
    amount: Decimal = strawberry.field(description="Amount in yuan.")


@strawberry.input(
    description="A settlement to record. The split into fundPay, accountPay and cashPay is "
    "computed from the insured place's benefits (docs/supervision.md); give the three "
    "together to have them checked instead (each difference is named). With `items` the "
    "total and inPolicy are priced by the treatment place's catalogue; without them both "
    "are required. Amounts are in yuan with at most two decimals, none negative. A "
    "settlement whose insured and treatment provinces differ is cross-province and needs an "
    "ACTIVE filing (备案) covering the treatment region on the settlement date. Times "
    "without an offset are China Standard Time."
)
class RecordSettlementInput:
    person_id: strawberry.ID = strawberry.field(description="The settled person's personId.")
    visit_id: strawberry.ID = strawberry.field(
        description="The settled visit (mdtrt_id), known to the bureau of the treatment province."
    )
    institution_code: str = strawberry.field(
        description="Treating institution, as in the directory (定点医药机构编码)."
    )
    medical_type: VisitType = strawberry.field(description="Medical type (医疗类别).")
    settled_at: datetime = strawberry.field(description="When it was settled; not in the future.")
    insured_region: str = strawberry.field(
        description="Insured place (参保地, insuplc_admdvs), as on the visit."
    )
    treatment_region: str = strawberry.field(
        description="Treatment place (就医地, mdtrtarea_admvs), as on the visit."
    )
    items: list[SettlementItemInput] | None = strawberry.field(
        default=None, description="The bill's items; delivery fees are never paid by the fund."
    )
    total: Decimal | None = strawberry.field(
        default=None, description="Total medical cost (医疗费总额), yuan."
    )
    in_policy: Decimal | None = strawberry.field(
        default=None, description="Cost within the policy scope (符合政策范围金额), yuan."
    )
    fund_pay: Decimal | None = strawberry.field(
        default=None, description="Paid by the pooled fund (统筹基金支付), yuan: checked."
    )
    account_pay: Decimal | None = strawberry.field(
        default=None, description="Paid from the personal account (个人账户支付), yuan: checked."
    )
    cash_pay: Decimal | None = strawberry.field(
        default=None, description="Paid in cash by the person (个人现金支付), yuan: checked."
    )
    dispensing_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="For a PHARMACY settlement of an e-prescription: the pharmacy's dispensing "
        "it pays for (D…, as `prescriptionTrace` names it). It must be a dispensing of this "
        "person at this pharmacy with this total, not settled before; `prescriptionTrace` then "
        "links the settlement to the prescription by it. Not for cross-province settlements.",
    )


@strawberry.type(description="What recordSettlement did.")
class RecordSettlementPayload:
    settlement: Settlement | None = strawberry.field(
        description="The recorded settlement, as `settlements` returns it."
    )
    replayed: bool = strawberry.field(
        description="True when this idempotencyKey had already "
        "recorded this input: nothing new was "
        "written and the first settlement is "
        "returned."
    )
    benefits: sb.SettlementBenefits | None = strawberry.field(
        default=None,
        description="How the benefits split it (null on a replay: see the first answer).",
    )
    warnings: list[sr.ClaimWarning] = strawberry.field(
        default_factory=list,
        description="Claims rules this settlement hit below blocking (empty on a replay).",
    )


def _check_role(ctx: Any) -> None:
    if ctx.principal.role not in (Role.SETTLEMENT_CENTER, Role.INSURANCE_AGENCY):
        raise forbidden("recordSettlement is for settlement centres and insurance agencies")


def _check_scope(ctx: Any, insured: str | None, treatment: str | None) -> None:
    """What the caller may settle. An insurance agency: settlements whose insured or
    treatment place lies in its own region. A settlement centre: cross-province settlements
    (跨省直接结算) only, which the national platform clears; the national centre any of them,
    a provincial centre those whose insured or treatment place lies in its region. The
    regions checked here are then checked against the bureau's visit, so they cannot lie."""
    principal = ctx.principal
    if insured is None or treatment is None:
        return  # invalid regions are reported as problems; nothing is written
    org = principal.org
    if principal.role == Role.INSURANCE_AGENCY:
        if codes.validate_region(org) or not (v.covers(org, insured) or v.covers(org, treatment)):
            raise forbidden(
                "an insurance agency may only record settlements whose insured or "
                "treatment region lies in its own region"
            )
        return
    if codes.province_of(insured) == codes.province_of(treatment):
        raise forbidden(
            "a settlement centre records only cross-province settlements (跨省直接结算); a "
            "settlement within one province is recorded by that province's insurance agencies"
        )
    if org in ctx.services.policy.national_orgs:
        return
    if codes.validate_region(org) or not (v.covers(org, insured) or v.covers(org, treatment)):
        raise forbidden(
            "a provincial settlement centre may only record cross-province settlements whose "
            "insured or treatment region lies in its own region"
        )


def _check_static(p: v.Problems, i: RecordSettlementInput, now: datetime) -> dict[str, Any]:
    v.person_id(p, ["input", "personId"], str(i.person_id))
    v.source_id(p, ["input", "visitId"], str(i.visit_id))
    v.institution(p, ["input", "institutionCode"], i.institution_code)
    out: dict[str, Any] = {
        "settled_at": v.not_future(p, ["input", "settledAt"], i.settled_at, now),
        "insured": v.region(p, ["input", "insuredRegion"], i.insured_region),
        "treatment": v.region(p, ["input", "treatmentRegion"], i.treatment_region),
    }
    fen = {
        column: None if getattr(i, attr) is None else v.money(p, ["input", name], getattr(i, attr))
        for name, attr, column in AMOUNTS
    }
    out["fen"] = fen
    out["items"] = sb.items_of(p, i.items)
    given = [name for name, attr, _ in AMOUNTS[2:] if getattr(i, attr) is not None]
    if given and len(given) != 3:
        for name in ("fundPay", "accountPay", "cashPay"):
            if name not in given:
                p.add(["input", name], "give fundPay, accountPay and cashPay together, or none")
    parts = (fen["fund_pay_fen"], fen["acct_pay_fen"], fen["cash_pay_fen"])
    if fen["total_fen"] is not None and None not in parts and fen["total_fen"] != sum(parts):
        p.add(["input", "total"], "must equal fundPay + accountPay + cashPay exactly")
        for name in ("fundPay", "accountPay", "cashPay"):
            p.add(["input", name], "fundPay + accountPay + cashPay must equal total exactly")
    if (
        fen["in_policy_fen"] is not None
        and fen["total_fen"] is not None
        and fen["in_policy_fen"] > fen["total_fen"]
    ):
        p.add(["input", "inPolicy"], "must not exceed total")
    return out


DISPENSING_RE = re.compile(r"^D[0-9A-Z]{10,23}$")


async def _check_dispensing(
    ctx: Any, p: v.Problems, i: RecordSettlementInput, plan: dict[str, Any], split: Any
) -> None:
    """The dispensing a PHARMACY settlement pays for, as the pharmacy recorded it (a fact the
    settling agency cannot write): this person's, at this pharmacy, for this total, once."""
    path = ["input", "dispensingId"]
    wanted = str(i.dispensing_id)
    if not DISPENSING_RE.match(wanted):
        p.add(path, "is not a dispensing id (D and 10-23 of 0-9 A-Z)")
        return
    if i.medical_type is not VisitType.PHARMACY:
        p.add(path, "is only for a PHARMACY settlement")
        return
    if plan.get("cross"):
        p.add(path, "is not recorded for cross-province settlements")
        return
    if split is None or "visit" not in plan or p.at("input", "institutionCode"):
        return  # the settlement itself is wrong: that is reported first
    source = next(
        (s for s in ctx.registry.of_kind("pharmacy") if s.spec.institution == i.institution_code),
        None,
    )
    found = []
    if source is not None:
        found = await lookups.ask(
            ctx,
            source,
            lambda e: fetch_in(e, pharmacy.Dispensing.__table__, "dispensing_id", [wanted]),
        )
    if not found or found[0]["person_ref"] != str(i.person_id):
        p.add(path, "is not a dispensing of this person at this pharmacy")
        return
    if found[0]["total_fen"] != split[0].total_fen:
        p.add(path, "does not have this settlement's total")
        return
    table = bureau.Settlement.__table__
    earlier = await lookups.ask(
        ctx, plan["bureau"], lambda e: fetch_in(e, table, "dispensing_id", [wanted])
    )
    if earlier:
        p.add(path, "was settled already")


async def _check_sources(
    ctx: Any, p: v.Problems, i: RecordSettlementInput, facts: dict[str, Any], setl_id: str
) -> dict[str, Any]:
    """What only the sources can tell: the institution, the visit, the filing."""
    plan: dict[str, Any] = {}
    insured, treatment = facts["insured"], facts["treatment"]
    if not p.at("input", "institutionCode"):
        row = await lookups.institution_row(ctx, i.institution_code)
        plan["institution"] = row
        if row is None:
            p.add(["input", "institutionCode"], "is not in the institution directory")
        elif treatment and codes.province_of(row["region"]) != codes.province_of(treatment):
            p.add(["input", "treatmentRegion"], "must be in the institution's province")
    if treatment is None:
        return plan
    target = lookups.bureau_of(ctx, codes.province_of(treatment))
    if target is None:
        p.add(["input", "treatmentRegion"], "no bureau of this province is part of the federation")
        return plan
    plan["bureau"] = target
    if p.at("input", "visitId") or p.at("input", "personId"):
        return plan
    visit = await lookups.visit_at(ctx, target, str(i.visit_id))
    if visit is None or visit["person_ref"] != str(i.person_id):
        p.add(
            ["input", "visitId"],
            "is not a visit of this person known to the bureau of the treatment province",
        )
        return plan
    plan["visit"] = visit
    if visit["institution_code"] != i.institution_code:
        p.add(["input", "institutionCode"], "must be the institution of the visit")
    if insured and visit["insuplc_admdvs"] != insured:
        p.add(["input", "insuredRegion"], "must be the visit's insured place")
    if visit["mdtrtarea_admvs"] != treatment:
        p.add(["input", "treatmentRegion"], "must be the visit's treatment place")
    cross = insured is not None and codes.province_of(insured) != codes.province_of(treatment)
    plan["cross"] = cross
    platform_source = lookups.platform_source(ctx)
    where = [target] + ([platform_source] if platform_source else [])
    others = [
        s
        for s in await lookups.settlements_of_visit(ctx, where, str(i.visit_id))
        if s["setl_id"] != setl_id
    ]
    if others:
        p.add(["input", "visitId"], "is already settled")
    if cross:
        if platform_source is None:
            p.add(
                ["input", "insuredRegion"],
                "cross-province settlement needs the national "
                "platform, which is not part of the federation",
            )
            return plan
        plan["platform"] = platform_source
        plan["filing"] = _covering_filing(
            await lookups.filings_of(ctx, platform_source, str(i.person_id)),
            insured,
            treatment,
            facts["settled_at"],
        )
        if plan["filing"] is None:
            p.add(
                ["input", "treatmentRegion"],
                "cross-province settlement needs an ACTIVE "
                "filing (备案) of this person covering this "
                "region on the settlement date",
            )
    return plan


def _covering_filing(
    filings: list[dict], insured: str, treatment: str, settled_at: datetime
) -> dict | None:
    day = settled_at.date()
    for filing in sorted(filings, key=lambda f: f["filed_at"], reverse=True):
        if (
            filing["status"] == "ACTIVE"
            and codes.province_of(filing["insuplc_admdvs"]) == codes.province_of(insured)
            and v.covers(filing["mdtrtarea_admvs"], treatment)
            and filing["valid_from"] <= day
            and (filing["valid_until"] is None or day <= filing["valid_until"])
        ):
            return filing
    return None


async def _benefits(
    ctx: Any,
    p: v.Problems,
    i: RecordSettlementInput,
    facts: dict[str, Any],
    plan: dict[str, Any],
    setl_id: str,
) -> tuple[Any, Any, Any] | None:
    """The split by the insured place's benefits, once the sources confirmed the visit; a
    submitted split is compared with it. Nothing is computed on input already refused."""
    if i.items is not None and facts["items"] is None:
        return None  # the items' own problems are reported
    bill = sb.bill_of(
        p,
        ctx.services.benefits.catalogue_for(facts["treatment"]) if facts["treatment"] else None,
        facts["items"],
        facts["fen"],
    )
    if p.items or bill is None or "visit" not in plan or plan.get("institution") is None:
        return None
    rows = await sr.person_rows(ctx, str(i.person_id))
    result = sb.compute_split(
        ctx,
        p,
        rows,
        bill=bill,
        insured=facts["insured"],
        medical_type=i.medical_type.value,
        settled_at=facts["settled_at"],
        setl_id=setl_id,
        visit=plan["visit"],
        institution=plan["institution"],
        cross=plan["cross"],
    )
    if result is None:
        return None
    sb.check_submitted(p, result[1], result[0], facts["fen"])
    return (*result, rows)


async def _load(ctx: Any, info: strawberry.Info, created: Created) -> Settlement | None:
    source = ctx.registry.get(created.source)
    table = (
        platform.CrossSettlement.__table__
        if source.spec.kind == "platform"
        else bureau.Settlement.__table__
    )
    row = await lookups.read_created(ctx, created.source, table, "setl_id", created.object_id)
    return None if row is None else SETTLEMENT.build(ctx, row, requested(info, "settlement"))


async def record_settlement(
    info: strawberry.Info,
    idempotency_key: Annotated[
        str,
        strawberry.argument(
            description="Client-chosen key (1-64 of A-Z a-z 0-9 _ -): the same key with the same "
            "input records once."
        ),
    ],
    input: Annotated[RecordSettlementInput, strawberry.argument(description="The settlement.")],
) -> RecordSettlementPayload:
    ctx = info.context
    _check_role(ctx)
    p = v.Problems()
    call = IdempotentCall(ctx, OPERATION, idempotency_key, p)
    canonical = {**strawberry.asdict(input), "settled_at": v.beijing(input.settled_at)}
    if (earlier := await call.earlier(canonical)) is not None:
        return RecordSettlementPayload(settlement=await _load(ctx, info, earlier), replayed=True)
    facts = _check_static(p, input, v.beijing_now(ctx.now))
    _check_scope(ctx, facts["insured"], facts["treatment"])
    setl_id = call.new_id("S", 24)
    plan = await _check_sources(ctx, p, input, facts, setl_id)
    split = await _benefits(ctx, p, input, facts, plan, setl_id)
    if input.dispensing_id is not None:
        await _check_dispensing(ctx, p, input, plan, split)
    p.raise_if_any(OPERATION)
    assert split is not None  # no problem means the split was computed
    row = {
        "setl_id": setl_id,
        "mdtrt_id": str(input.visit_id),
        "person_ref": str(input.person_id),
        "institution_code": input.institution_code,
        "med_type": input.medical_type.value,
        "setl_time": facts["settled_at"],
        "insuplc_admdvs": facts["insured"],
        "mdtrtarea_admvs": facts["treatment"],
        "total_fen": split[0].total_fen,
        "in_policy_fen": split[0].in_policy_fen,
        "fund_pay_fen": split[0].fund_fen,
        "acct_pay_fen": split[0].account_fen,
        "cash_pay_fen": split[0].cash_fen,
        "clearing_status": "PENDING",
    }
    if input.dispensing_id is not None:
        row["dispensing_id"] = str(input.dispensing_id)
    if plan["cross"]:
        source = plan["platform"]
        row |= {
            "filing_id": plan["filing"]["filing_id"],
            "clearing_month": f"{facts['settled_at']:%Y-%m}",
        }
        table, write = platform.CrossSettlement.__table__, writers.write_cross_settlement
    else:
        source = plan["bureau"]
        row["cross_province"] = False
        table, write = bureau.Settlement.__table__, writers.write_settlement
    hits = await sr.review(ctx, row, split[2], plan["bureau"])
    doctor = plan["visit"]["doctor_code"]
    if any(h.grade >= 4 for h in hits):
        await sr.keep(ctx, hits, row, source.name, doctor, settled=False)
        raise sr.refused(hits)
    if (twin := await call.claim()) is not None:
        return RecordSettlementPayload(settlement=await _load(ctx, info, twin), replayed=True)
    await call.write(
        ctx,
        Target(source.name, table.name, "setl_id", setl_id, person=str(input.person_id)),
        lambda: lookups.ask(ctx, source, lambda e: write(e, row)),
    )
    await anchoring.anchor(ctx, source, table.name, [setl_id])
    created = Created(source.name, setl_id)
    await call.done(created)
    await sr.keep(ctx, hits, row, source.name, doctor, settled=True)
    return RecordSettlementPayload(
        settlement=await _load(ctx, info, created),
        replayed=False,
        benefits=sb.describe(split[1], split[0]),
        warnings=sr.warnings_of(ctx, hits),
    )
