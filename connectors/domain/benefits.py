"""Benefits by rule (待遇): ``connectors/domain/benefits.toml`` parsed strictly, and the split of
one settlement into pooled fund, personal account and cash computed from it.

The file has two parts. ``[catalogues."<province>"]`` is the treatment place's catalogue
(就医地目录): each item code in class 甲 (fully in policy), 乙 (in policy after the first
self-paid share, 先行自付) or 丙 (self-paid); codes it does not list are 丙, and delivery fees
are never in policy. ``[regions."<code>"]`` are the insured place's benefits (参保地待遇) per
pooling region: the chronic and special outpatient diseases (门诊慢特病), the common diseases
whose internet revisits are paid, the points lost for care in another province, and per
insurance type the annual cap, whether a personal account pays, and three schemes (inpatient,
outpatient, chronic) each with a deductible and a payment ratio per institution level. A
region is found by the most specific entry covering the insured place: district, city, then
province.

The split (``compute``) is a pure function of the bill, the visit, the enrolment and what the
person's earlier settlements of the year used; the same function serves ``recordSettlement``
and the demo generator, so both always agree. Amounts are integer fen; a ratio's product is
rounded down, so the fund never pays a fen more than the rule says.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from connectors.domain import codes
from security.errors import MedfedError

BENEFITS_FILE = Path(__file__).resolve().parent / "benefits.toml"

CLASSES = ("甲", "乙", "丙")
LEVELS = ("TERTIARY", "SECONDARY", "PRIMARY", "NONE")
INSURANCE_TYPES = ("EMPLOYEE", "RESIDENT")
SCHEMES = ("inpatient", "outpatient", "chronic")
MEDICAL_TYPES = ("OUTPATIENT", "INPATIENT", "INTERNET_REVISIT", "CHRONIC_OUTPATIENT", "PHARMACY")
ITEM_KINDS = ("DRUG", "SERVICE", "DELIVERY")
PER = ("ADMISSION", "YEAR")
# Which earlier settlements a YEAR deductible counts: those whose medical type can fall under
# the scheme (an internet revisit can be a common or a chronic disease's).
SCHEME_MEDICAL_TYPES = {
    "inpatient": frozenset({"INPATIENT"}),
    "outpatient": frozenset({"OUTPATIENT", "PHARMACY", "INTERNET_REVISIT"}),
    "chronic": frozenset({"CHRONIC_OUTPATIENT", "INTERNET_REVISIT"}),
}
_MAX_FEN = 10**12


class BenefitsError(MedfedError, ValueError):
    """A malformed benefits file: one line naming the key; the gateway must not start on it."""


@dataclass(frozen=True, slots=True)
class Catalogue:
    province: str
    class_b_self_share: Decimal  # 乙类先行自付
    items: Mapping[str, str]  # code -> 甲 | 乙 | 丙

    def class_of(self, code: str) -> str:
        return self.items.get(code, "丙")


@dataclass(frozen=True, slots=True)
class Scheme:
    deductible_fen: int
    per: str  # ADMISSION | YEAR
    ratios: Mapping[str, Decimal]  # level -> share of the payable amount; absent: not paid


@dataclass(frozen=True, slots=True)
class InsuranceBenefits:
    annual_cap_fen: int
    account: bool  # the personal account pays the personal share within policy
    schemes: Mapping[str, Scheme]


@dataclass(frozen=True, slots=True)
class RegionBenefits:
    code: str
    name: str
    chronic_diseases: tuple[str, ...]  # ICD-10 prefixes
    common_diseases: tuple[str, ...]  # ICD-10 prefixes whose internet revisits are paid
    elsewhere_points: int  # ratio points lost for care in another province
    types: Mapping[str, InsuranceBenefits]


@dataclass(frozen=True, slots=True)
class Benefits:
    catalogues: Mapping[str, Catalogue]
    regions: Mapping[str, RegionBenefits]
    # The fund's budget per enrolled person and year, fen, per region (fund monitoring).
    budgets: Mapping[str, int] = field(default_factory=dict)

    def budget_for(self, region: str) -> int | None:
        """The most specific budget covering ``region``: district, city, province."""
        for key in (region, region[:4] + "00", region[:2] + "0000"):
            if key in self.budgets:
                return self.budgets[key]
        return None

    def region_for(self, insured: str) -> RegionBenefits | None:
        """The most specific entry covering ``insured``: district, city, province."""
        for key in (insured, insured[:4] + "00", insured[:2] + "0000"):
            if key in self.regions:
                return self.regions[key]
        return None

    def catalogue_for(self, treatment: str) -> Catalogue | None:
        return self.catalogues.get(codes.province_of(treatment))


# -- the bill and what the year used ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Item:
    code: str
    kind: str  # DRUG | SERVICE | DELIVERY
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Bill:
    """A bill as the treatment place's catalogue prices it: the total, the amount in policy
    (符合政策范围: 甲, plus 乙 less its first self-paid share), and what was delivery."""

    total_fen: int
    in_policy_fen: int
    delivery_fen: int = 0


def price(catalogue: Catalogue, items: Iterable[Item]) -> Bill:
    total = in_policy = delivery = 0
    for item in items:
        total += item.amount_fen
        if item.kind == "DELIVERY":  # never paid by the fund, online or not
            delivery += item.amount_fen
            continue
        cls = catalogue.class_of(item.code)
        if cls == "甲":
            in_policy += item.amount_fen
        elif cls == "乙":
            in_policy += item.amount_fen - _share(item.amount_fen, catalogue.class_b_self_share)
    return Bill(total, in_policy, delivery)


@dataclass(frozen=True, slots=True)
class Earlier:
    """One earlier settlement of the same person and pooling region in the same year."""

    medical_type: str
    in_policy_fen: int
    fund_fen: int


def earlier_from_rows(
    insured: str, rows: Iterable[Mapping[str, Any]], at: datetime, setl_id: str
) -> list[Earlier]:
    """Settlements insured in the same pooling region, in the same calendar year, ordered
    before this one by (time, settlement id), as the demo generator orders them too."""
    return [
        Earlier(row["med_type"], row["in_policy_fen"], row["fund_pay_fen"])
        for row in rows
        if row["insuplc_admdvs"] == insured
        and row["setl_time"].year == at.year
        and (row["setl_time"], row["setl_id"]) < (at, setl_id)
    ]


@dataclass(frozen=True, slots=True)
class Split:
    total_fen: int
    in_policy_fen: int
    fund_fen: int
    account_fen: int
    cash_fen: int
    scheme: str | None  # None: the fund pays nothing for this kind of care
    deductible_fen: int = 0  # the part of the deductible this bill bore
    ratio: Decimal = Decimal(0)
    capped: bool = False  # the annual cap cut the fund's share
    notes: tuple[str, ...] = field(default=())


def scheme_of(region: RegionBenefits, medical_type: str, diagnoses: Iterable[str]) -> str | None:
    """The scheme a visit is paid under, or None when the fund pays nothing. An internet
    revisit is paid like the offline visit of its disease: chronic under the chronic scheme,
    common under the outpatient one, any other not at all."""
    dx = tuple(diagnoses)
    chronic = any(_listed(d, region.chronic_diseases) for d in dx)
    if medical_type == "INPATIENT":
        return "inpatient"
    if medical_type in ("OUTPATIENT", "PHARMACY"):
        return "outpatient"
    if medical_type == "CHRONIC_OUTPATIENT":
        return "chronic" if chronic else None
    if medical_type == "INTERNET_REVISIT":
        if chronic:
            return "chronic"
        return "outpatient" if dx and all(_listed(d, region.common_diseases) for d in dx) else None
    return None


def compute(
    region: RegionBenefits,
    bill: Bill,
    *,
    insurance_type: str,
    level: str,
    medical_type: str,
    diagnoses: Iterable[str],
    cross_province: bool,
    account_balance_fen: int,
    earlier: Iterable[Earlier] = (),
) -> Split:
    """The split of ``bill`` by the insured place's benefits: total = fund + account + cash."""
    kind = region.types.get(insurance_type)
    scheme_name = scheme_of(region, medical_type, diagnoses) if kind else None
    scheme = kind.schemes.get(scheme_name) if kind and scheme_name else None
    notes: list[str] = []
    fund = deductible = 0
    ratio = Decimal(0)
    capped = False
    earlier = list(earlier)
    if kind is None:
        notes.append(f"region {region.code} has no benefits for {insurance_type}")
    elif scheme is None:
        notes.append(f"{medical_type} for these diagnoses is not paid by the fund")
    elif level not in scheme.ratios:
        notes.append(f"the {scheme_name} scheme pays nothing at level {level}")
    else:
        deductible = scheme.deductible_fen
        if scheme.per == "YEAR":
            counted = SCHEME_MEDICAL_TYPES[scheme_name]
            used = sum(e.in_policy_fen for e in earlier if e.medical_type in counted)
            deductible = max(0, deductible - used)
        deductible = min(deductible, bill.in_policy_fen)
        ratio = scheme.ratios[level] - (
            Decimal(region.elsewhere_points) / 100 if cross_province else Decimal(0)
        )
        ratio = max(ratio, Decimal(0))
        fund = _share(bill.in_policy_fen - deductible, ratio)
        left = max(0, kind.annual_cap_fen - sum(e.fund_fen for e in earlier))
        if fund > left:
            fund, capped = left, True
            notes.append("the annual cap is reached")
    personal_in_policy = bill.in_policy_fen - fund
    account = 0
    if kind is not None and kind.account:
        account = max(0, min(personal_in_policy, account_balance_fen))
    cash = bill.total_fen - fund - account
    return Split(
        total_fen=bill.total_fen,
        in_policy_fen=bill.in_policy_fen,
        fund_fen=fund,
        account_fen=account,
        cash_fen=cash,
        scheme=scheme_name if scheme is not None and level in scheme.ratios else None,
        deductible_fen=deductible,
        ratio=ratio,
        capped=capped,
        notes=tuple(notes),
    )


def _share(amount_fen: int, ratio: Decimal) -> int:
    return int((Decimal(amount_fen) * ratio).to_integral_value(rounding="ROUND_FLOOR"))


def _listed(code: str, prefixes: Iterable[str]) -> bool:
    return any(code == p or code.startswith(p + ".") for p in prefixes)


# -- parsing ------------------------------------------------------------------------------------
def _table(where: str, raw: Any) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise BenefitsError(f"{where}: must be a table")
    return raw


def _keys(where: str, raw: Mapping[str, Any], allowed: Iterable[str], required=()) -> None:
    allowed = tuple(allowed)
    for key in raw:
        if key not in allowed:
            raise BenefitsError(f"{where}.{key}: is not a benefits setting here")
    for key in required:
        if key not in raw:
            raise BenefitsError(f"{where}.{key}: is required")


def _yuan(where: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise BenefitsError(f"{where}: {raw!r} must be an amount in yuan")
    try:
        fen = Decimal(str(raw)).scaleb(2)
    except InvalidOperation:
        raise BenefitsError(f"{where}: {raw!r} must be an amount in yuan") from None
    if fen < 0 or fen != fen.to_integral_value() or fen > _MAX_FEN:
        raise BenefitsError(
            f"{where}: {raw!r} must be a non-negative amount with at most 2 decimals"
        )
    return int(fen)


def _ratio(where: str, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1:
        raise BenefitsError(f"{where}: {raw!r} must be a ratio from 0 to 1")
    return Decimal(str(raw))


def _prefixes(where: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise BenefitsError(f"{where}: must be a list of ICD-10 codes or categories")
    for value in raw:
        if codes.validate_icd10(value):
            raise BenefitsError(f"{where}: {value!r} is not an ICD-10 code or category")
    return tuple(raw)


def _catalogue(province: str, raw: Any) -> Catalogue:
    where = f"catalogues.{province}"
    if problem := codes.validate_province(province):
        raise BenefitsError(f"{where}: {problem}")
    raw = _table(where, raw)
    _keys(where, raw, ("class_b_self_share", "items"), ("class_b_self_share", "items"))
    items = _table(f"{where}.items", raw["items"])
    for code, cls in items.items():
        if cls not in CLASSES:
            raise BenefitsError(f"{where}.items.{code}: {cls!r} must be one of 甲, 乙, 丙")
    return Catalogue(
        province, _ratio(f"{where}.class_b_self_share", raw["class_b_self_share"]), dict(items)
    )


def _scheme(where: str, raw: Any) -> Scheme:
    raw = _table(where, raw)
    _keys(where, raw, ("deductible", "per", "ratios"), ("deductible", "per", "ratios"))
    if raw["per"] not in PER:
        raise BenefitsError(f"{where}.per: {raw['per']!r} must be ADMISSION or YEAR")
    ratios = _table(f"{where}.ratios", raw["ratios"])
    for level in ratios:
        if level not in LEVELS:
            raise BenefitsError(f"{where}.ratios.{level}: is not a level ({', '.join(LEVELS)})")
    return Scheme(
        _yuan(f"{where}.deductible", raw["deductible"]),
        raw["per"],
        {lvl: _ratio(f"{where}.ratios.{lvl}", r) for lvl, r in ratios.items()},
    )


def _insurance(where: str, raw: Any) -> InsuranceBenefits:
    raw = _table(where, raw)
    _keys(where, raw, ("annual_cap", "account", *SCHEMES), ("annual_cap", "account", *SCHEMES))
    if not isinstance(raw["account"], bool):
        raise BenefitsError(f"{where}.account: must be true or false")
    return InsuranceBenefits(
        _yuan(f"{where}.annual_cap", raw["annual_cap"]),
        raw["account"],
        {name: _scheme(f"{where}.{name}", raw[name]) for name in SCHEMES},
    )


def _region(code: str, raw: Any) -> RegionBenefits:
    where = f"regions.{code}"
    if problem := codes.validate_region(code):
        raise BenefitsError(f"{where}: {problem}")
    raw = _table(where, raw)
    scalars = ("name", "chronic_diseases", "common_diseases", "elsewhere_points")
    _keys(where, raw, (*scalars, *INSURANCE_TYPES), scalars)
    if not isinstance(raw["name"], str) or not raw["name"]:
        raise BenefitsError(f"{where}.name: must be the region's name")
    points = raw["elsewhere_points"]
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= 100:
        raise BenefitsError(f"{where}.elsewhere_points: {points!r} must be 0-100 points")
    types = {t: _insurance(f"{where}.{t}", raw[t]) for t in INSURANCE_TYPES if t in raw}
    if not types:
        raise BenefitsError(f"{where}: needs EMPLOYEE and/or RESIDENT benefits")
    return RegionBenefits(
        code,
        raw["name"],
        _prefixes(f"{where}.chronic_diseases", raw["chronic_diseases"]),
        _prefixes(f"{where}.common_diseases", raw["common_diseases"]),
        points,
        types,
    )


def parse_benefits(text: str, origin: str = "benefits.toml") -> Benefits:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BenefitsError(f"{origin}: is not valid TOML ({exc})") from None
    _keys("benefits", raw, ("catalogues", "regions", "budgets"), ("catalogues", "regions"))
    catalogues = {p: _catalogue(p, c) for p, c in _table("catalogues", raw["catalogues"]).items()}
    regions = {c: _region(c, r) for c, r in _table("regions", raw["regions"]).items()}
    budgets = {c: _budget(c, r) for c, r in _table("budgets", raw.get("budgets", {})).items()}
    return Benefits(catalogues, regions, budgets)


def _budget(code: str, raw: Any) -> int:
    where = f"budgets.{code}"
    if problem := codes.validate_region(code):
        raise BenefitsError(f"{where}: {problem}")
    raw = _table(where, raw)
    _keys(where, raw, ("per_person_year",), ("per_person_year",))
    return _yuan(f"{where}.per_person_year", raw["per_person_year"])


def load_benefits(path: Path | str | None = None) -> Benefits:
    path = Path(path) if path else BENEFITS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise BenefitsError(f"{path}: benefits file not found") from None
    return parse_benefits(text, str(path))


@cache
def default_benefits() -> Benefits:
    return load_benefits()
