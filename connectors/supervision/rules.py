"""The claims rule base (``connectors/domain/claims_rules.toml``): parsed strictly, and each
rule as a pure function of one claim (a settlement, proposed or stored) and its facts.

The same functions run before settlement (``recordSettlement``: a hit of grade 4 refuses, a
lower one is a warning in the answer) and after it (``medfed supervise scan`` and the server's
schedule), so a rule means the same thing in both places. A hit's detail names codes, dates and
counts, never a personal value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from connectors.domain import benefits as b
from connectors.domain import codes
from security.errors import MedfedError

RULES_FILE = Path(__file__).resolve().parents[1] / "domain" / "claims_rules.toml"
GRADES = (1, 2, 3, 4)
BLOCKING = 4
OFFLINE = frozenset({"OUTPATIENT", "INPATIENT", "CHRONIC_OUTPATIENT"})
Row = Mapping[str, Any]


class RulesError(MedfedError, ValueError):
    """A malformed rule base: one line naming the key; the gateway must not start on it."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    grade: int
    enabled: bool
    params: Mapping[str, Any]

    @property
    def blocking(self) -> bool:
        return self.grade >= BLOCKING


@dataclass(frozen=True, slots=True)
class Hit:
    rule: str
    grade: int
    detail: str


@dataclass
class Facts:
    """What the rules may look at for one claim. ``visits`` and ``settlements`` are all of
    the person's at every bureau and the platform (the claim itself left out of
    ``settlements``); ``enrolments`` the person's at the insured province."""

    visit: Row | None
    visits: list[Row] = field(default_factory=list)
    settlements: list[Row] = field(default_factory=list)
    enrolments: list[Row] = field(default_factory=list)
    prescriptions: list[Row] = field(default_factory=list)  # of the claim's visit
    # the pharmacies' dispensings of those prescriptions that were circulated, by rx_id
    dispensings: dict[str, list[Row]] = field(default_factory=dict)
    doctor_day_visits: int = 0  # the visit's doctor's visits on the visit's first day


# -- the rules ----------------------------------------------------------------------------------
def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def _span(visit: Row) -> tuple[date, date]:
    begin = _day(visit["begin_date"])
    return begin, _day(visit["end_date"]) if visit["end_date"] else begin


def duplicate_billing(rule: Rule, claim: Row, f: Facts, _: b.Benefits) -> str | None:
    window = timedelta(days=rule.params["window_days"])
    for other in f.settlements:
        if (
            other["institution_code"] == claim["institution_code"]
            and other["med_type"] == claim["med_type"]
            and other["total_fen"] == claim["total_fen"]
            and abs(other["setl_time"] - claim["setl_time"]) <= window
        ):
            return f"same institution, medical type and total as settlement {other['setl_id']}"
    return None


def without_visit(rule: Rule, claim: Row, f: Facts, _: b.Benefits) -> str | None:
    if f.visit is None or f.visit["person_ref"] != claim["person_ref"]:
        return f"visit {claim['mdtrt_id']} is not a visit of this person at the treatment bureau"
    return None


def revisit_without_offline(rule: Rule, claim: Row, f: Facts, _: b.Benefits) -> str | None:
    if f.visit is None or f.visit["visit_type"] != "INTERNET_REVISIT":
        return None
    begin = _day(f.visit["begin_date"])
    earliest = begin - timedelta(days=rule.params["lookback_days"])
    seen = {
        d[:3]
        for v in f.visits
        if v["visit_type"] in OFFLINE and earliest <= _day(v["begin_date"]) < begin
        for d in v["diagnosis_codes"].split(",")
    }
    missing = sorted({d[:3] for d in f.visit["diagnosis_codes"].split(",") if d} - seen)
    if missing:
        days = rule.params["lookback_days"]
        return f"no offline visit diagnosing {', '.join(missing)} in the {days} days before"
    return None


def cross_province_outpatient(rule: Rule, claim: Row, f: Facts, _: b.Benefits) -> str | None:
    treatment = codes.province_of(claim["mdtrtarea_admvs"])
    if codes.province_of(claim["insuplc_admdvs"]) == treatment:
        return None
    if claim["med_type"] in ("OUTPATIENT", "PHARMACY"):
        if treatment not in rule.params["pilot_provinces"]:
            return f"general outpatient care in {treatment}, not a pilot province"
    elif claim["med_type"] == "CHRONIC_OUTPATIENT" and f.visit is not None:
        listed = rule.params["listed_diseases"]
        dx = [d for d in f.visit["diagnosis_codes"].split(",") if d]
        if not any(d == p or d.startswith(p + ".") or d[:3] == p for d in dx for p in listed):
            return "chronic outpatient care across provinces for a disease not listed"
    return None


def over_annual_cap(rule: Rule, claim: Row, f: Facts, rules: b.Benefits) -> str | None:
    region = rules.region_for(claim["insuplc_admdvs"])
    begin = _day(f.visit["begin_date"]) if f.visit else _day(claim["setl_time"])
    enrolment = next(
        (
            e
            for e in f.enrolments
            if e["pool_admdvs"] == claim["insuplc_admdvs"]
            and e["begin_date"] <= begin
            and (e["end_date"] is None or begin <= e["end_date"])
        ),
        None,
    )
    kind = region.types.get(enrolment["insutype"]) if region and enrolment else None
    if kind is None:
        return None
    year = [
        e.fund_fen
        for e in b.earlier_from_rows(
            claim["insuplc_admdvs"], f.settlements, claim["setl_time"], claim["setl_id"]
        )
    ]
    paid = sum(year) + claim["fund_pay_fen"]
    if claim["fund_pay_fen"] > 0 and paid >= kind.annual_cap_fen:
        year_of = claim["setl_time"].year
        return f"the fund's payments of {year_of} reach the annual cap of {region.code}"
    return None


def unreviewed_prescription(rule: Rule, claim: Row, f: Facts, _: b.Benefits) -> str | None:
    """Drugs handed out on a prescription before a pharmacist approved it: billed with the
    visit at the hospital, or dispensed at the pharmacy it was circulated to."""
    for rx in f.prescriptions:
        approved = rx["reviewed_at"] if rx["review_status"] == "APPROVED" else None
        if rx["circulated_to"] is not None:
            for d in f.dispensings.get(rx["rx_id"], []):
                if approved is None or d["dispensed_at"] < approved:
                    return (
                        f"prescription {rx['rx_id']} dispensed at {d['pharmacy_code']} "
                        "before a pharmacist approved it"
                    )
            continue  # not billed with the visit: the pharmacy's dispensing is the bill
        if rx["review_status"] == "REJECTED":
            continue  # not dispensed at all
        if approved is None or approved > claim["setl_time"]:
            return f"prescription {rx['rx_id']} billed before a pharmacist approved it"
    return None


def at_once(v: Row, o: Row) -> bool:
    """Whether offline visits ``v`` and ``o`` at two institutions mean one person in two
    places at once: one strictly inside the other's stay, two stays overlapping (a transfer on
    the discharge day is not), or two outpatient visits the same day in different cities.
    The demo generator places its visits with this same test."""
    if o["institution_code"] == v["institution_code"]:
        return False
    a0, a1 = _span(v)
    b0, b1 = _span(o)
    stay_v, stay_o = v["visit_type"] == "INPATIENT", o["visit_type"] == "INPATIENT"
    if stay_v and stay_o:
        return a0 < b1 and b0 < a1
    if stay_v or stay_o:
        (s0, s1), day = ((a0, a1), b0) if stay_v else ((b0, b1), a0)
        return s0 < day < s1  # seen elsewhere strictly during the stay
    return a0 == b0 and v["institution_code"][1:5] != o["institution_code"][1:5]


def simultaneous_care(rule: Rule, claim: Row, f: Facts, _: b.Benefits) -> str | None:
    v = f.visit
    if v is None or v["visit_type"] not in OFFLINE:
        return None
    for o in f.visits:
        if o["mdtrt_id"] == v["mdtrt_id"] or o["visit_type"] not in OFFLINE:
            continue
        if at_once(v, o):
            return f"visit {o['mdtrt_id']} at {o['institution_code']} at the same time"
    return None


def doctor_volume(rule: Rule, claim: Row, f: Facts, _: b.Benefits) -> str | None:
    limit = rule.params["max_visits_per_day"]
    if f.visit is None or f.visit["visit_type"] == "PHARMACY":
        return None  # a pharmacy sale is no doctor's visit
    if f.doctor_day_visits > limit:
        return (
            f"doctor {f.visit['doctor_code']} has {f.doctor_day_visits} visits on "
            f"{_day(f.visit['begin_date'])}, more than {limit}"
        )
    return None


Check = Callable[[Rule, Row, Facts, b.Benefits], str | None]
# Each rule: its check and the parameters it takes (name -> type).
CHECKS: dict[str, tuple[Check, dict[str, type]]] = {
    "DUPLICATE_BILLING": (duplicate_billing, {"window_days": int}),
    "SETTLEMENT_WITHOUT_VISIT": (without_visit, {}),
    "REVISIT_WITHOUT_OFFLINE_DIAGNOSIS": (revisit_without_offline, {"lookback_days": int}),
    "CROSS_PROVINCE_OUTPATIENT": (
        cross_province_outpatient,
        {"pilot_provinces": list, "listed_diseases": list},
    ),
    "OVER_ANNUAL_CAP": (over_annual_cap, {}),
    "UNREVIEWED_PRESCRIPTION": (unreviewed_prescription, {}),
    "SIMULTANEOUS_CARE": (simultaneous_care, {}),
    "DOCTOR_VOLUME": (doctor_volume, {"max_visits_per_day": int}),
}


# Credit levels by the points of confirmed violations (the sum of their grades).
DEFAULT_CREDIT = (("A", 0), ("B", 4), ("C", 10), ("D", 20))


@dataclass(frozen=True, slots=True)
class RuleBase:
    rules: tuple[Rule, ...]
    credit_levels: tuple[tuple[str, int], ...] = DEFAULT_CREDIT

    def enabled(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def review(self, claim: Row, facts: Facts, rules: b.Benefits) -> list[Hit]:
        """Every enabled rule's hit on one claim, in the file's order."""
        hits = []
        for rule in self.enabled():
            check = CHECKS[rule.id][0]
            if (detail := check(rule, claim, facts, rules)) is not None:
                hits.append(Hit(rule.id, rule.grade, detail))
        return hits


# -- parsing ------------------------------------------------------------------------------------
def _param(where: str, raw: Any, kind: type) -> Any:
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 100_000:
            raise RulesError(f"{where}: {raw!r} must be a whole number 0-100000")
        return raw
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise RulesError(f"{where}: must be a list of codes")
    for value in raw:
        if where.endswith("provinces") and (problem := codes.validate_province(value)):
            raise RulesError(f"{where}: {problem}")
        if where.endswith("diseases") and (problem := codes.validate_icd10(value)):
            raise RulesError(f"{where}: {problem}")
    return tuple(raw)


def _rule(rule_id: str, raw: Any) -> Rule:
    where = f"rules.{rule_id}"
    if rule_id not in CHECKS:
        raise RulesError(f"{where}: is not a rule medfed implements ({', '.join(CHECKS)})")
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be a table")
    kinds = CHECKS[rule_id][1]
    for key in raw:
        if key not in ("title", "grade", "enabled", *kinds):
            raise RulesError(f"{where}.{key}: is not a setting of this rule")
    for key in ("title", "grade", *kinds):
        if key not in raw:
            raise RulesError(f"{where}.{key}: is required")
    if not isinstance(raw["title"], str) or not raw["title"]:
        raise RulesError(f"{where}.title: must say what the rule finds")
    if raw["grade"] not in GRADES or isinstance(raw["grade"], bool):
        raise RulesError(f"{where}.grade: {raw['grade']!r} must be 1, 2, 3 or 4")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RulesError(f"{where}.enabled: must be true or false")
    params = {k: _param(f"{where}.{k}", raw[k], t) for k, t in kinds.items()}
    return Rule(rule_id, raw["title"], raw["grade"], enabled, params)


def parse_rules(text: str, origin: str = "claims_rules.toml") -> RuleBase:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{origin}: is not valid TOML ({exc})") from None
    if not set(raw) <= {"rules", "credit"} or not isinstance(raw.get("rules"), dict):
        extra = sorted(set(raw) - {"rules", "credit"})
        raise RulesError(
            f"{extra[0] if extra else 'rules'}: the file holds [rules.<ID>] and [credit] only"
        )
    rules = tuple(_rule(rule_id, r) for rule_id, r in raw["rules"].items())
    return RuleBase(rules, _credit(raw.get("credit")))


def _credit(raw: Any) -> tuple[tuple[str, int], ...]:
    if raw is None:
        return DEFAULT_CREDIT
    if not isinstance(raw, dict) or set(raw) != {"levels"} or not isinstance(raw["levels"], dict):
        raise RulesError("credit: must hold levels = { A = 0, B = …, … } only")
    levels = []
    for name, low in raw["levels"].items():
        if not isinstance(name, str) or len(name) != 1 or not name.isupper():
            raise RulesError(f"credit.levels.{name}: a level is one capital letter")
        levels.append((name, _param(f"credit.levels.{name}", low, int)))
    ordered = sorted(levels, key=lambda lv: lv[1])
    if not ordered or ordered[0][1] != 0 or [n for n, _ in ordered] != sorted(n for n, _ in levels):
        raise RulesError("credit.levels: the first level starts at 0 and letters rise with points")
    return tuple(ordered)


def load_rules(path: Path | str | None = None) -> RuleBase:
    path = Path(path) if path else RULES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise RulesError(f"{path}: rule base not found") from None
    return parse_rules(text, str(path))


@cache
def default_rules() -> RuleBase:
    return load_rules()


def group_by(rows: Iterable[Row], key: str) -> dict[Any, list[Row]]:
    out: dict[Any, list[Row]] = {}
    for row in rows:
        out.setdefault(row[key], []).append(row)
    return out
