"""The statistics medfed answers, and how each kind of source computes its part of them.

Every dimension is a string-valued SQL expression over the source's own columns; every
measure is a row count, a count of distinct persons, or a sum of an integer column. Names are
the API's (``MONTH``, ``TREATMENT_PROVINCE``); values are what the API shows (``2020-03``,
``330000``, ``true``). Public *domains* (all values a dimension can take, whether or not a row
has it) are what differential privacy releases cells over, so that which cells exist is never
itself a disclosure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, and_, case, cast, false, func, literal, true

from connectors.domain.codes import FILING_CATEGORIES, FILING_CHANNELS, PROVINCE_PREFIXES
from connectors.domain.drug_classes import DRUG_CLASSES, OTHER
from connectors.domain.recognition import LEVEL_RANK, RecognitionCatalogue
from connectors.sql.models import bureau, directory, pharmacy, platform
from connectors.sql.models import hospital as hospital_models
from connectors.statistics.plan import SourcePlan

LEVELS = ("TERTIARY", "SECONDARY", "PRIMARY", "NONE", "UNKNOWN")
MEDICAL_TYPES = ("OUTPATIENT", "INPATIENT", "INTERNET_REVISIT", "CHRONIC_OUTPATIENT", "PHARMACY")
PROVINCES = tuple(sorted(f"{p}0000" for p in PROVINCE_PREFIXES))
BOOLEANS = ("false", "true")


@dataclass(frozen=True)
class Institutions:
    """The directory as the statistics need it: public facts about institutions."""

    level: Mapping[str, str]  # code -> TERTIARY | SECONDARY | PRIMARY | NONE
    internet: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Context:
    institutions: Institutions
    recognition: RecognitionCatalogue
    now: datetime
    months: tuple[str, ...] = ()  # the MONTH domain of a differentially private answer


@dataclass(frozen=True)
class Dimension:
    name: str
    description: str
    domain: Callable[[Context], tuple[str, ...]]


@dataclass(frozen=True)
class Sum:
    name: str
    description: str
    per_person: int  # under DP: a person's total at one source, over the cells released
    money: bool = True  # in fen at the source, yuan in the API


@dataclass(frozen=True)
class Located:
    """A source plan plus the columns filters need."""

    plan: SourcePlan
    time: ColumnElement | None = None
    insured: ColumnElement | None = None
    treatment: ColumnElement | None = None


@dataclass(frozen=True)
class Statistic:
    name: str
    description: str
    dimensions: Mapping[str, Dimension]
    sums: Mapping[str, Sum]
    kinds: tuple[str, ...]
    plan: Callable[[Any, Context], Located | None]  # (source, context) -> plan, None: skip
    # Under differential privacy, what one person may add at one source to the cells released
    # together (beyond it their contribution is scaled down, see connectors.statistics.plan):
    rows_per_person: int = 10  # rows counted
    cells_per_person: int = 20  # cells counted in as a distinct person
    count_name: str = "count"
    count_description: str = "Rows counted."
    personal: bool = True  # False: public data (the directory), no persons, no grade applies
    extra: Mapping[str, Any] = field(default_factory=dict)


# -- expressions shared by the plans ---------------------------------------------------------
def province(column: ColumnElement) -> ColumnElement:
    return func.substr(column, 1, 2).concat("0000")


def month(column: ColumnElement) -> ColumnElement:
    # The text form of a date or timestamp starts with YYYY-MM on SQLite and PostgreSQL alike.
    return func.substr(cast(column, String), 1, 7)


def flag(column: ColumnElement) -> ColumnElement:
    return case((column.is_(true()), "true"), else_="false")


def level_of(code: ColumnElement, institutions: Institutions) -> ColumnElement:
    if not institutions.level:
        return literal("UNKNOWN", String)
    return case(dict(institutions.level), value=code, else_="UNKNOWN")


def drug_class(code: ColumnElement) -> ColumnElement:
    prefix = func.substr(code, 1, 4)
    return case({c: c for c in DRUG_CLASSES}, value=prefix, else_=OTHER)


def _const(value: str) -> ColumnElement:
    return literal(value, String)


def _months(ctx: Context) -> tuple[str, ...]:
    return ctx.months


def _values(*values: str) -> Callable[[Context], tuple[str, ...]]:
    return lambda _ctx: values


def _dim(name: str, description: str, domain: Callable[[Context], tuple[str, ...]]):
    return name, Dimension(name, description, domain)


# -- settlements (结算) -------------------------------------------------------------------------
SETTLEMENT_DIMS = dict(
    (
        _dim("INSURED_PROVINCE", "Province of the insured place (参保地).", _values(*PROVINCES)),
        _dim(
            "TREATMENT_PROVINCE", "Province of the treatment place (就医地).", _values(*PROVINCES)
        ),
        _dim("MONTH", "Month of settlement, YYYY-MM.", _months),
        _dim("MEDICAL_TYPE", "Medical type of the visit.", _values(*MEDICAL_TYPES)),
        _dim("INSTITUTION_LEVEL", "Level of the treating institution.", _values(*LEVELS)),
        _dim("CROSS_PROVINCE", "Cross-province direct settlement or not.", _values(*BOOLEANS)),
    )
)
# Per-person totals under DP (fen): public constants, set from what a person's care can cost
# (on the demo the costliest person's settlements at one bureau come to about 105,000 yuan),
# never read from the data when a question is asked.
MONEY = {
    "total_cost": Sum("total_cost", "Total cost in yuan (医疗费总额).", 20_000_000),
    "in_policy_cost": Sum("in_policy_cost", "In-policy cost in yuan (政策范围内费用).", 20_000_000),
    "fund_payment": Sum(
        "fund_payment", "Paid by the pooled fund, in yuan (统筹基金支付).", 20_000_000
    ),
}


def _settlement_plan(source: Any, ctx: Context) -> Located | None:
    kind = source.spec.kind
    if kind == "bureau":
        t = bureau.Settlement.__table__
        cross = flag(t.c.cross_province)
    elif kind == "platform":
        t = platform.CrossSettlement.__table__
        cross = _const("true")
    else:
        return None
    plan = SourcePlan(
        base=t,
        person=t.c.person_ref,
        dims={
            "INSURED_PROVINCE": province(t.c.insuplc_admdvs),
            "TREATMENT_PROVINCE": province(t.c.mdtrtarea_admvs),
            "MONTH": month(t.c.setl_time),
            "MEDICAL_TYPE": t.c.med_type,
            "INSTITUTION_LEVEL": level_of(t.c.institution_code, ctx.institutions),
            "CROSS_PROVINCE": cross,
        },
        sums={
            "total_cost": t.c.total_fen,
            "in_policy_cost": t.c.in_policy_fen,
            "fund_payment": t.c.fund_pay_fen,
        },
    )
    return Located(plan, t.c.setl_time, t.c.insuplc_admdvs, t.c.mdtrtarea_admvs)


SETTLEMENTS = Statistic(
    name="settlement",
    description="Settlements (结算) from every bureau and the national platform.",
    dimensions=SETTLEMENT_DIMS,
    sums=MONEY,
    kinds=("bureau", "platform"),
    plan=_settlement_plan,
    rows_per_person=40,
    count_name="settlements",
    count_description="Number of settlements.",
)


# -- filings (备案) -----------------------------------------------------------------------------
FILING_STATUSES = ("ACTIVE", "REVOKED", "EXPIRED")


def _filing_plan(source: Any, ctx: Context) -> Located | None:
    if source.spec.kind != "platform":
        return None
    t = platform.Filing.__table__
    plan = SourcePlan(
        base=t,
        person=t.c.person_ref,
        dims={
            "INSURED_PROVINCE": province(t.c.insuplc_admdvs),
            "DESTINATION_PROVINCE": province(t.c.mdtrtarea_admvs),
            "CATEGORY": t.c.category,
            "CHANNEL": t.c.channel,
            "STATUS": t.c.status,
            "MONTH": month(t.c.filed_at),
        },
    )
    return Located(plan, t.c.filed_at, t.c.insuplc_admdvs, t.c.mdtrtarea_admvs)


FILINGS = Statistic(
    name="filing",
    description="Filings for care in another region (异地就医备案) at the national platform.",
    dimensions=dict(
        (
            _dim("INSURED_PROVINCE", "Province of the insured place.", _values(*PROVINCES)),
            _dim("DESTINATION_PROVINCE", "Province of the destination.", _values(*PROVINCES)),
            _dim("CATEGORY", "Filing category.", _values(*FILING_CATEGORIES)),
            _dim("CHANNEL", "Channel the filing came through.", _values(*FILING_CHANNELS)),
            _dim("STATUS", "Status of the filing.", _values(*FILING_STATUSES)),
            _dim("MONTH", "Month of filing, YYYY-MM.", _months),
        )
    ),
    sums={},
    kinds=("platform",),
    plan=_filing_plan,
    rows_per_person=3,
    cells_per_person=3,
    count_name="filings",
    count_description="Number of filings.",
)


# -- internet+ care (互联网+医疗服务, seed 000 §七(二)) ---------------------------------
def _internet_services_plan(source: Any, ctx: Context) -> Located | None:
    if source.spec.kind != "bureau":
        return None
    t = bureau.Settlement.__table__
    plan = SourcePlan(
        base=t,
        person=t.c.person_ref,
        dims={
            "MONTH": month(t.c.setl_time),
            "TREATMENT_PROVINCE": province(t.c.mdtrtarea_admvs),
            "INSURED_PROVINCE": province(t.c.insuplc_admdvs),
            "INSTITUTION_LEVEL": level_of(t.c.institution_code, ctx.institutions),
        },
        sums={"total_cost": t.c.total_fen, "fund_payment": t.c.fund_pay_fen},
        where=(t.c.med_type == "INTERNET_REVISIT",),
    )
    return Located(plan, t.c.setl_time, t.c.insuplc_admdvs, t.c.mdtrtarea_admvs)


INTERNET_SERVICES = Statistic(
    name="internetCare.services",
    description="Internet revisits (互联网复诊) settled by the bureaus: volume, cost, fund.",
    dimensions=dict(
        (
            _dim("MONTH", "Month of settlement, YYYY-MM.", _months),
            _dim("TREATMENT_PROVINCE", "Province of the internet hospital.", _values(*PROVINCES)),
            _dim("INSURED_PROVINCE", "Province of the insured place.", _values(*PROVINCES)),
            _dim("INSTITUTION_LEVEL", "Level of the internet hospital.", _values(*LEVELS)),
        )
    ),
    sums={
        # An internet revisit costs tens of yuan: a far smaller bound than all settlements'.
        "total_cost": Sum("total_cost", MONEY["total_cost"].description, 500_000),
        "fund_payment": Sum("fund_payment", MONEY["fund_payment"].description, 500_000),
    },
    kinds=("bureau",),
    plan=_internet_services_plan,
    rows_per_person=20,
    count_name="services",
    count_description="Number of internet revisits settled.",
)


def _drugs_plan(source: Any, ctx: Context) -> Located | None:
    if source.spec.kind != "pharmacy":
        return None
    d = pharmacy.Dispensing.__table__
    i = pharmacy.DispensingItem.__table__
    plan = SourcePlan(
        base=i.join(d, i.c.dispensing_id == d.c.dispensing_id),
        person=d.c.person_ref,
        dims={
            "DRUG_CLASS": drug_class(i.c.drug_code),
            "MONTH": month(d.c.dispensed_at),
            "DELIVERED": flag(d.c.delivered),
            "PHARMACY_PROVINCE": province(func.substr(d.c.pharmacy_code, 2, 6)),
        },
        sums={"quantity": i.c.quantity, "drug_cost": i.c.amount_fen},
    )
    return Located(plan, d.c.dispensed_at)


INTERNET_DRUGS = Statistic(
    name="internetCare.drugs",
    description="Drugs of circulated prescriptions (处方流转) dispensed by pharmacies, by class.",
    dimensions=dict(
        (
            _dim(
                "DRUG_CLASS",
                "Drug class: the code's first four characters.",
                _values(*DRUG_CLASSES, OTHER),
            ),
            _dim("MONTH", "Month dispensed, YYYY-MM.", _months),
            _dim("DELIVERED", "Delivered to the patient's home or not.", _values(*BOOLEANS)),
            _dim("PHARMACY_PROVINCE", "Province of the pharmacy.", _values(*PROVINCES)),
        )
    ),
    sums={
        "quantity": Sum("quantity", "Units dispensed (boxes, bottles, pens).", 48, money=False),
        "drug_cost": Sum("drug_cost", "Drug cost in yuan.", 500_000),
    },
    kinds=("pharmacy",),
    plan=_drugs_plan,
    rows_per_person=24,
    count_name="items",
    count_description="Dispensed prescription items.",
)


def _institutions_plan(source: Any, ctx: Context) -> Located | None:
    if source.spec.kind != "directory":
        return None
    t = directory.Institution.__table__
    plan = SourcePlan(
        base=t,
        person=t.c.code,  # institutions, not persons: the directory holds nothing personal
        dims={
            "INSTITUTION_LEVEL": t.c.level,
            "PROVINCE": province(t.c.region),
            "KIND": t.c.kind,
        },
        where=(t.c.internet_hospital.is_(true()),),
    )
    return Located(plan)


INTERNET_INSTITUTIONS = Statistic(
    name="internetCare.institutions",
    description="Internet hospitals (互联网医院) in the directory: public data, exact for all.",
    dimensions=dict(
        (
            _dim("INSTITUTION_LEVEL", "Level of the hospital.", _values(*LEVELS)),
            _dim("PROVINCE", "Province of the hospital.", _values(*PROVINCES)),
            _dim("KIND", "Kind of institution.", _values("HOSPITAL", "PHARMACY")),
        )
    ),
    sums={},
    kinds=("directory",),
    plan=_institutions_plan,
    count_name="institutions",
    count_description="Number of internet hospitals.",
    personal=False,
)


# -- mutual recognition of results (检查检验结果互认) ---------------------------------------------
def _recognition_plan(source: Any, ctx: Context) -> Located | None:
    if source.spec.kind != "hospital":
        return None
    t = hospital_models.TestResult.__table__
    level = ctx.institutions.level.get(source.spec.institution or "", "UNKNOWN")
    rank = LEVEL_RANK.get(level, 0)
    items = ctx.recognition.items
    eligible = sorted(code for code, item in items.items() if rank >= LEVEL_RANK[item.min_level])
    # Recognisable: in the catalogue and performed at a high enough level. Valid now: also
    # reported within the item's validity window before the request's time.
    recognisable = t.c.item_code.in_(eligible) if eligible else false()
    windows = [
        (
            and_(
                t.c.item_code == code,
                t.c.reported_at >= ctx.now - timedelta(days=items[code].validity_days),
            ),
            1,
        )
        for code in eligible
    ]
    valid = case(*windows, else_=0) if windows else literal(0, Integer)
    plan = SourcePlan(
        base=t,
        person=t.c.person_ref,
        dims={
            "ITEM": case({c: c for c in sorted(items)}, value=t.c.item_code, else_=OTHER),
            "CATEGORY": t.c.category,
            "INSTITUTION_LEVEL": _const(level),
            "PROVINCE": _const(f"{(source.spec.institution or 'H00')[1:3]}0000"),
            "MONTH": month(t.c.reported_at),
        },
        sums={
            "recognized": case((recognisable, 1), else_=0),
            "valid_now": valid,
        },
    )
    return Located(plan, t.c.reported_at)


def _items(ctx: Context) -> tuple[str, ...]:
    return (*sorted(ctx.recognition.items), OTHER)


RECOGNITION = Statistic(
    name="recognition",
    description="Lab and imaging results shared by the hospitals, and how many other "
    "hospitals recognise (互认).",
    dimensions=dict(
        (
            _dim(
                "ITEM", "Item: LOINC code of a catalogued lab item, or the modality; OTHER.", _items
            ),
            _dim("CATEGORY", "LAB or IMAGING.", _values("LAB", "IMAGING")),
            _dim("INSTITUTION_LEVEL", "Level of the performing hospital.", _values(*LEVELS)),
            _dim("PROVINCE", "Province of the performing hospital.", _values(*PROVINCES)),
            _dim("MONTH", "Month reported, YYYY-MM.", _months),
        )
    ),
    sums={
        "recognized": Sum("recognized", "Results other hospitals recognise.", 48, money=False),
        "valid_now": Sum("valid_now", "Recognised results still valid now.", 48, money=False),
    },
    kinds=("hospital",),
    plan=_recognition_plan,
    rows_per_person=48,
    count_name="results",
    count_description="Number of results.",
)

STATISTICS: Mapping[str, Statistic] = {
    s.name: s
    for s in (
        SETTLEMENTS,
        FILINGS,
        INTERNET_SERVICES,
        INTERNET_DRUGS,
        INTERNET_INSTITUTIONS,
        RECOGNITION,
    )
}
