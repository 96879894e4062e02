"""The deterministic per-person generator.

Person ``index`` of a build with ``seed`` draws everything from its own RNG, seeded by
``(seed, index)``, so any batch of persons can be generated anywhere, in any order, and the
same seed and index always give the same records. A record is ``(destination, table, values)``
with *plain* values: ``*_enc`` columns hold the plain text, ``person_ref`` and the ``*_bidx``
columns hold the value they are computed from (ID number, phone). ``connectors.demo.encode``
turns them into stored rows; the content hash is taken over these plain records.

Destinations are ``bureau:<province>``, ``hospital:<code>``, ``pharmacy:<code>``, ``platform``
and ``directory``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from connectors.demo import clinical, institutions, names, regions
from connectors.demo.drugs import DRUGS
from connectors.demo.institutions import Institution
from connectors.domain import benefits
from connectors.domain.codes import id_check_digit
from connectors.domain.prescriptions import canonical_detail
from connectors.supervision.rules import OFFLINE, at_once

DEMO_START = date(2018, 1, 1)
DEMO_END = date(2020, 10, 31)  # the demo's "today" is 2020-11-01
CURRENT_MONTH = "2020-10"  # settlements of this month are not cleared yet
# Birth dates come from an injective map of the person index (see _birth_and_order), so no two
# demo persons ever share an ID number, however many are built.
_BIRTH_FIRST = date(1933, 1, 1)
_BIRTH_SPAN_DAYS = 31_590  # to mid-2019; coprime with the stride below
_BIRTH_STRIDE = 7_919
_ORDER_CODES_PER_SEX = 500

Record = tuple[str, str, dict[str, object]]
# Service item codes of the demo's bills, classed in benefits.toml's catalogues.
CONSULTATION, BED, SURGERY, TESTS = "110200001", "120100001", "330100001", "250100001"


@dataclass
class Dispensed:
    """A dispensing the generator wrote, with its delivery events, for the hospital's events."""

    row: dict
    deliveries: list[dict] = field(default_factory=list)


def dispensed_facts(d: dict) -> dict:
    """A DISPENSED event's facts, from the pharmacy's dispensing row (as the mutation's)."""
    return {
        "pharmacy": d["pharmacy_code"],
        "certType": d["cert_type"],
        "totalFen": d["total_fen"],
        "fundPayFen": d["fund_pay_fen"],
        "accountPayFen": d["acct_pay_fen"],
        "cashPayFen": d["cash_pay_fen"],
        "homeDelivery": d["delivered"],
        "deliveryFeeFen": d["delivery_fee_fen"],
    }


def bureau(province: str) -> str:
    return f"bureau:{province}"


def directory_records() -> list[Record]:
    listed: list[Record] = [
        (
            "directory",
            "institutions",
            {
                "code": i.code,
                "name": i.name,
                "level": i.level,
                "kind": i.kind,
                "region": i.region,
                "internet_hospital": i.internet,
                "address": institutions.address_of(i),
                "phone": institutions.phone_of(i),
            },
        )
        for i in institutions.INSTITUTIONS
    ]
    labels = [
        *(("REGION", code, p.name) for code, p in regions.PROVINCES.items()),
        *(("REGION", code, name) for code, name in regions.CITIES.items()),
        *(("REGION", d.code, regions.full_place(d)) for d in regions.DISTRICTS),
        *(("DIAGNOSIS", d.code, d.text) for d in clinical.DIAGNOSES.values()),
        *(("DRUG", d.code, d.name) for d in DRUGS.values()),
    ]
    listed += [
        ("directory", "code_labels", {"kind": k, "code": c, "label": label})
        for k, c, label in labels
    ]
    return listed


@dataclass
class Enrolment:
    province: str
    residence: regions.District
    insutype: str
    begin: date
    end: date | None
    psn_no: str
    balance_fen: int = 0

    @property
    def pool(self) -> str:
        return self.residence.city


@dataclass
class Pending:
    """A settlement whose split waits until all of the person's care is generated: splits are
    computed in (time, id) order, so a year's deductible and cap run as the gateway runs them."""

    when: datetime
    setl_id: str
    e: Enrolment
    inst: Institution
    vtype: str
    dx: tuple[str, ...]
    begin: date
    items: list[benefits.Item]
    cross: bool
    rows: list[dict[str, object]]  # the settlement row, and a dispensing row if any


@dataclass
class Filing:
    filing_id: str
    destination: str  # city or province code
    valid_from: date
    valid_until: date


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the small rates used here.
    limit, k, p = pow(2.718281828459045, -lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _at(day: date, rng: random.Random, first_hour: int = 8, last_hour: int = 17) -> datetime:
    return datetime.combine(day, time(_randint(rng, first_hour, last_hour), _below(rng, 60)))


def _birth_and_order(seed: int, index: int, male: bool) -> tuple[date, str]:
    """A birth date and the three-digit order code (顺序码, odd for men) that no other index
    shares: the order code carries ``index % 500``, the date an injection of ``index // 500``."""
    q, r = divmod(index, _ORDER_CODES_PER_SEX)
    # For a fixed r the offset is injective in q (the stride is coprime with the span); the
    # hashed start scatters neighbouring indexes over the whole span, so small demos have all ages.
    start = int.from_bytes(hashlib.sha256(f"{seed}/{r}".encode()).digest()[:8], "big")
    offset = (q * _BIRTH_STRIDE + start) % _BIRTH_SPAN_DAYS
    return _BIRTH_FIRST + timedelta(days=offset), f"{2 * r + (1 if male else 0):03d}"


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# One person in this many holds a hospital bed while seen elsewhere (see _hold_the_bed).
HELD_BED_EVERY = 2_500


class PersonGenerator:
    """Generates one person's records; ``records`` holds them in generation order."""

    def __init__(self, seed: int, index: int) -> None:
        self.rng = random.Random(f"medfed-demo/{seed}/{index}")
        self.seed, self.index = seed, index
        self.records: list[Record] = []
        self._seq = 0  # per-person counter for record ids
        self._results = 0
        self._patients: set[str] = set()  # hospitals that already hold this patient
        self._late_details: list[tuple[dict, dict]] = []  # DISPENSED events, for their split
        self._pending: list[Pending] = []
        self._reviewed: datetime | None = None  # the last review of the visit being settled
        self._offline: list[dict] = []  # the offline visits placed so far (see _place)
        self.held_bed: date | None = None  # the day of the planted 挂床住院 visit, if any

    # -- identity -----------------------------------------------------------------------------
    def run(self) -> list[Record]:
        rng = self.rng
        self.male = rng.random() < 0.5
        self.born, order = _birth_and_order(self.seed, self.index, self.male)
        self.age = _age(self.born, DEMO_END)
        provinces = list(regions.PROVINCE_WEIGHTS)
        first = rng.choices(provinces, tuple(regions.PROVINCE_WEIGHTS.values()))[0]
        self.moved = self.age >= 20 and rng.random() < 0.08
        last = rng.choice([p for p in provinces if p != first]) if self.moved else first
        birth_province = first if rng.random() < 0.85 else rng.choice(provinces)
        birth_district = rng.choice(regions.DISTRICTS_BY_PROVINCE[birth_province])
        body = f"{birth_district.code}{self.born:%Y%m%d}{order}"
        self.id_number = body + id_check_digit(body)
        self.name = names.person_name(rng, self.male)
        self.phone = (
            f"1{rng.choice('3578')}{_below(rng, 10)}"
            + f"{(self.index * 7_919 + self.seed) % 100_000_000:08d}"
        )
        self.chronic = self._chronic_codes()
        self.enrolments = self._enrolments(first, last, birth_district)
        for enrolment in self.enrolments:
            self._person_rows(enrolment)
        for enrolment in self.enrolments:
            self._care(enrolment)
        self._cross_province_care()
        self._split_all()
        for values, dispensing in self._late_details:
            values["detail"] = canonical_detail(dispensed_facts(dispensing))
        return self.records

    def _split_all(self) -> None:
        """Every settlement split by benefits.toml, as recordSettlement would split it."""
        rules = benefits.default_benefits()
        earlier: dict[tuple[str, int], list[benefits.Earlier]] = {}
        for s in sorted(self._pending, key=lambda s: (s.when, s.setl_id)):
            region = rules.region_for(s.e.pool)
            catalogue = rules.catalogue_for(s.inst.region)
            assert region is not None and catalogue is not None, "benefits.toml covers the demo"
            year = earlier.setdefault((s.e.pool, s.when.year), [])
            split = benefits.compute(
                region,
                benefits.price(catalogue, s.items),
                insurance_type=s.e.insutype,
                level=s.inst.level,
                medical_type=s.vtype,
                diagnoses=s.dx,
                cross_province=s.cross,
                account_balance_fen=s.e.balance_fen,
                earlier=tuple(year),
            )
            year.append(benefits.Earlier(s.vtype, split.in_policy_fen, split.fund_fen))
            amounts = {
                "total_fen": split.total_fen,
                "fund_pay_fen": split.fund_fen,
                "acct_pay_fen": split.account_fen,
                "cash_pay_fen": split.cash_fen,
            }
            for row in s.rows:
                row.update({k: v for k, v in amounts.items()})
            s.rows[0]["in_policy_fen"] = split.in_policy_fen

    def _chronic_codes(self) -> tuple[str, ...]:
        age, rng = self.age, self.rng
        p_i10 = 0.01 if age < 35 else 0.12 if age < 55 else 0.35
        p_e11 = 0.005 if age < 35 else 0.06 if age < 55 else 0.18
        return tuple(code for code, p in (("I10", p_i10), ("E11.9", p_e11)) if rng.random() < p)

    def _insutype(self) -> str:
        if 18 <= self.age < 60:
            return "EMPLOYEE" if self.rng.random() < 0.6 else "RESIDENT"
        return "EMPLOYEE" if self.age >= 60 and self.rng.random() < 0.5 else "RESIDENT"

    def _enrolments(self, first: str, last: str, birth: regions.District) -> list[Enrolment]:
        rng = self.rng
        adult = self.born + timedelta(days=18 * 365 + 5)
        insutype = self._insutype()

        def residence(province: str) -> regions.District:
            if province == birth.province and rng.random() < 0.8:
                return birth
            return rng.choice(regions.DISTRICTS_BY_PROVINCE[province])

        def psn_no(province: str) -> str:
            return f"{province[:2]}00{self.index:010d}"

        start = max(self.born, date(2008, 1, 1) + timedelta(days=_below(rng, 3650)))
        if not self.moved:
            return [Enrolment(first, residence(first), insutype, start, None, psn_no(first))]
        # Moved: insured at home first, ended on moving, insured at the new place since.
        start = max(adult, date(2008, 1, 1) + timedelta(days=_below(rng, 3000)))
        moved_on = max(
            start + timedelta(days=200), date(2018, 3, 1) + timedelta(days=_below(rng, 640))
        )
        return [
            Enrolment(first, residence(first), insutype, start, moved_on, psn_no(first)),
            Enrolment(
                last,
                residence(last),
                insutype,
                moved_on + timedelta(days=_randint(rng, 1, 45)),
                None,
                psn_no(last),
            ),
        ]

    def _person_rows(self, e: Enrolment) -> None:
        rng = self.rng
        address = (
            f"{regions.full_place(e.residence)}{rng.choice(regions.STREETS)}"
            f"{_randint(rng, 1, 399)}号{_randint(rng, 1, 30)}幢{_randint(rng, 1, 28)}"
            f"{_randint(rng, 1, 4):02d}室"
        )
        self.records.append(
            (
                bureau(e.province),
                "persons",
                {
                    "psn_no": e.psn_no,
                    "person_ref": self.id_number,
                    "id_number_bidx": self.id_number,
                    "phone_bidx": self.phone,
                    "name_enc": self.name,
                    "id_number_enc": self.id_number,
                    "phone_enc": self.phone,
                    "birth_date_enc": self.born.isoformat(),
                    "address_enc": address,
                    "gender": "MALE" if self.male else "FEMALE",
                    "insuplc_admdvs": e.pool,
                },
            )
        )
        balance = _randint(rng, 50_000, 3_000_000) if e.insutype == "EMPLOYEE" else 0
        e.balance_fen = 0 if e.end else balance
        self.records.append(
            (
                bureau(e.province),
                "enrollments",
                {
                    "enrollment_id": f"E{e.province[:2]}{self.index:010d}01",
                    "psn_no": e.psn_no,
                    "person_ref": self.id_number,
                    "insutype": e.insutype,
                    "pool_admdvs": e.pool,
                    "begin_date": e.begin,
                    "end_date": e.end,
                    "status": "ENDED" if e.end else "ACTIVE",
                    "account_balance_fen": e.balance_fen,
                },
            )
        )

    # -- care at home -------------------------------------------------------------------------
    def _window(self, e: Enrolment) -> tuple[date, date] | None:
        first, last = max(e.begin, DEMO_START), min(e.end or DEMO_END, DEMO_END)
        return (first, last) if first < last else None

    def _care(self, e: Enrolment) -> None:
        window = self._window(e)
        if window is None:
            return
        rng, (first, last) = self.rng, window
        years = (last - first).days / 365.25
        age = self.age
        rate = 2.5 if age < 7 else 1.2 if age < 45 else 2.0 if age < 65 else 3.0
        inpatient_p = 0.10 if age >= 65 else 0.04
        hospitals = institutions.HOSPITALS_BY_PROVINCE[e.province]
        weights = institutions.HOSPITAL_WEIGHTS[e.province]
        days = sorted(
            first + timedelta(days=_below(rng, (last - first).days))
            for _ in range(_poisson(rng, rate * years))
        )
        for day in days:
            if rng.random() < inpatient_p:
                dx = (_weighted(rng, clinical.INPATIENT_DX),)
                inst = _pick(rng, hospitals, weights, inpatient=True)
                self._visit(e, inst, "INPATIENT", day, dx)
            else:
                dx = (_weighted(rng, clinical.OUTPATIENT_DX),)
                if self.chronic and rng.random() < 0.3:
                    dx += self.chronic
                self._visit(e, _pick(rng, hospitals, weights), "OUTPATIENT", day, dx)
        if self.chronic:
            self._chronic_care(e, first, last)

    def _chronic_care(self, e: Enrolment, first: date, last: date) -> None:
        """门诊慢特病: a follow-up every two to four months at one clinic, alternating with
        internet revisits (复诊续方) where the province has an internet hospital."""
        rng = self.rng
        hospitals = institutions.HOSPITALS_BY_PROVINCE[e.province]
        clinic = _pick(rng, hospitals, institutions.HOSPITAL_WEIGHTS[e.province])
        online = institutions.INTERNET_BY_PROVINCE[e.province]
        internet = rng.choice(online) if online else None
        day = first + timedelta(days=_below(rng, 90))
        offline_first = True  # an internet revisit follows an offline diagnosis (首诊在线下)
        while day < last:
            if internet is not None and not offline_first and rng.random() < 0.45:
                self._visit(e, internet, "INTERNET_REVISIT", day, self.chronic)
            else:
                self._visit(e, clinic, "CHRONIC_OUTPATIENT", day, self.chronic)
            offline_first = False
            day += timedelta(days=_randint(rng, 60, 120))

    # -- care elsewhere -----------------------------------------------------------------------
    def _cross_province_care(self) -> None:
        """Care in another province: filed with the platform first (备案), then treated and
        settled directly there, the platform recording the settlement for clearing."""
        rng = self.rng
        p = 0.30 if self.moved else 0.14 if self.age >= 60 else 0.05
        if rng.random() >= p:
            return
        e = rng.choice(self.enrolments)
        window = self._window(e)
        if window is None:
            return
        others = [p for p in regions.PROVINCES if p != e.province]
        home_before = self.enrolments[0].province if self.moved else None
        destination_province = (
            home_before if home_before in others and rng.random() < 0.5 else rng.choice(others)
        )
        hospitals = institutions.HOSPITALS_BY_PROVINCE[destination_province]
        weights = institutions.HOSPITAL_WEIGHTS[destination_province]
        if self.age >= 60 and rng.random() < 0.5:
            category, days_valid, whole_province = "RELOCATED_RETIREE", 730, True
        else:
            category, days_valid, whole_province = rng.choice(
                (
                    ("REFERRAL", 180, False),
                    ("TEMPORARY", 180, False),
                    ("LONG_TERM_RESIDENT", 365, True),
                )
            )
        if category == "REFERRAL":  # referrals go to a higher-level hospital
            pool = [h for h in hospitals if h.level == institutions.TERTIARY]
            inst = rng.choice(pool)
        else:
            inst = _pick(rng, hospitals, weights)
        first, last = window
        span = (last - first).days
        if span < 30:
            return
        filed = first + timedelta(days=_below(rng, span - 20))
        filing = Filing(
            filing_id=f"F{e.province[:2]}{self.index:010d}{self._next():03d}",
            destination=destination_province if whole_province else inst.city,
            valid_from=filed,
            valid_until=filed + timedelta(days=days_valid),
        )
        filed_at = _at(filed, rng, 7, 22)
        self.records.append(
            (
                "platform",
                "filings",
                {
                    "filing_id": filing.filing_id,
                    "person_ref": self.id_number,
                    "id_number_bidx": self.id_number,
                    "name_enc": self.name,
                    "insuplc_admdvs": e.pool,
                    "mdtrtarea_admvs": filing.destination,
                    "category": category,
                    "channel": rng.choices(
                        ("APP", "MINI_PROGRAM", "PHONE", "COUNTER"), (5, 3, 1, 2)
                    )[0],
                    "status": "ACTIVE" if filing.valid_until >= DEMO_END else "EXPIRED",
                    "filed_at": filed_at,
                    "valid_from": filing.valid_from,
                    "valid_until": filing.valid_until,
                },
            )
        )
        end = min(filing.valid_until, last)
        visits = sorted(
            filed + timedelta(days=_randint(rng, 1, max(1, (end - filed).days - 1)))
            for _ in range(_randint(rng, 1, 3))
        )
        for day in visits:
            if day >= end:
                continue
            if rng.random() < 0.5 and inst.level != institutions.PRIMARY:
                dx = (_weighted(rng, clinical.INPATIENT_DX),)
                self._visit(e, inst, "INPATIENT", day, dx, filing=filing)
            else:
                dx = (_weighted(rng, clinical.OUTPATIENT_DX), *self.chronic)
                self._visit(e, inst, "OUTPATIENT", day, dx, filing=filing)
            if whole_province and rng.random() < 0.4:  # free to go elsewhere in the province
                inst = _pick(rng, hospitals, weights)

    # -- one visit and what follows from it ---------------------------------------------------
    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _place(
        self, code: str, vtype: str, day: date, end: date, limit: date
    ) -> tuple[date, date] | None:
        """Where an offline visit drawn for ``day`` fits: a person is in one place at a time,
        so a visit that would be at once with one already placed (the supervision rule's own
        test, ``at_once``) moves to the day after that one ends, its length kept; None when
        that is past ``limit``. Care is drawn independently per kind (home, chronic, elsewhere),
        so without this a stay's days would be shared with other hospitals' visits."""
        length = end - day
        while True:
            me = {"institution_code": code, "visit_type": vtype, "begin_date": day}
            me["end_date"] = min(day + length, DEMO_END)
            clashes = [o for o in self._offline if at_once(me, o)]
            if not clashes:
                self._offline.append(me)
                return day, me["end_date"]
            day = max(o["end_date"] for o in clashes) + timedelta(days=1)
            if day > limit:
                return None

    def _visit(
        self,
        e: Enrolment,
        inst: Institution,
        vtype: str,
        day: date,
        dx: tuple[str, ...],
        *,
        filing: Filing | None = None,
        planted: bool = False,
    ) -> None:
        rng = self.rng
        dx = tuple(dict.fromkeys(dx))  # de-duplicated, in order
        where = inst.province
        suffix = f"{where[:2]}{self.index:010d}{self._next():03d}"
        mdtrt_id = f"V{suffix}"
        doctor = f"D{inst.code}{_randint(rng, 1, 60):03d}"
        end = day
        if vtype == "INPATIENT":
            end = min(day + timedelta(days=_randint(rng, 3, 14)), DEMO_END)
        if vtype in OFFLINE and not planted:
            limits = [DEMO_END, e.end, filing.valid_until - timedelta(days=1) if filing else None]
            placed = self._place(inst.code, vtype, day, end, min(d for d in limits if d))
            if placed is None:
                return  # no room before the enrolment or filing ends: the visit never was
            day, end = placed
        self.records.append(
            (
                bureau(where),
                "visits",
                {
                    "mdtrt_id": mdtrt_id,
                    "person_ref": self.id_number,
                    "institution_code": inst.code,
                    "visit_type": vtype,
                    "begin_date": day,
                    "end_date": end,
                    "diagnosis_codes": ",".join(dx),
                    "diagnosis_text_enc": "；".join(clinical.DIAGNOSES[c].text for c in dx),
                    "doctor_code": doctor,
                    "insuplc_admdvs": e.pool,
                    "mdtrtarea_admvs": inst.city,
                    "cross_region": inst.city != e.pool,
                },
            )
        )
        items = self._fees(rng, inst, vtype, day, end)
        tests = self._tests(inst, vtype, day, dx, mdtrt_id, doctor)
        if tests:
            items.append(benefits.Item(TESTS, "SERVICE", tests))
        items += self._prescription(
            e, inst, vtype, day, dx, suffix, doctor, mdtrt_id, circulate=filing is None
        )
        self._settle(e, inst, vtype, day, end, dx, suffix, mdtrt_id, items, filing)
        if vtype == "INPATIENT" and not planted:
            self._hold_the_bed(e, inst, day, end, filing)

    def _hold_the_bed(
        self, e: Enrolment, inst: Institution, day: date, end: date, filing: Filing | None
    ) -> None:
        """挂床住院, the demo's one planted fraud: one person in ``HELD_BED_EVERY`` is, during
        their first stay of three days or more, seen as an outpatient at a hospital of another
        city of the province, the bed still billed. The supervision rule SIMULTANEOUS_CARE
        finds both claims; nothing else in the demo is at once."""
        if self.index % HELD_BED_EVERY != HELD_BED_EVERY - 1 or self.held_bed is not None:
            return
        if (end - day).days < 3:
            return
        elsewhere = [
            h
            for h in institutions.HOSPITALS_BY_PROVINCE[inst.province]
            if h.city != inst.city and h.level != institutions.PRIMARY
        ]
        if not elsewhere:
            return
        dx = (_weighted(self.rng, clinical.OUTPATIENT_DX),)
        self.held_bed = day + timedelta(days=1)
        chosen = self.rng.choice(elsewhere)
        self._visit(e, chosen, "OUTPATIENT", self.held_bed, dx, filing=filing, planted=True)

    @staticmethod
    def _fees(
        rng: random.Random, inst: Institution, vtype: str, day: date, end: date
    ) -> list[benefits.Item]:
        if vtype == "INPATIENT":
            per_day = _randint(rng, 30_000, 120_000)
            surgery = _randint(rng, 500_000, 3_000_000) if rng.random() < 0.3 else 0
            items = [benefits.Item(BED, "SERVICE", per_day * max(1, (end - day).days))]
            return items + ([benefits.Item(SURGERY, "SERVICE", surgery)] if surgery else [])
        consult = {"INTERNET_REVISIT": (1_000, 2_500), "CHRONIC_OUTPATIENT": (1_000, 3_000)}
        low, high = consult.get(vtype, (1_500, 5_000))
        fee = _randint(rng, low, high) + (1_000 if inst.level == institutions.TERTIARY else 0)
        return [benefits.Item(CONSULTATION, "SERVICE", fee)]

    def _tests(
        self,
        inst: Institution,
        vtype: str,
        day: date,
        dx: tuple[str, ...],
        mdtrt_id: str,
        doctor: str,
    ) -> int:
        """Lab panels and imaging for a visit; the results are recorded where the hospital
        has its own LIS/PACS (a source), and every test is billed either way."""
        if vtype == "INTERNET_REVISIT":
            return 0
        rng = self.rng
        lab_p, imaging_p = {"INPATIENT": (1.0, 0.7), "CHRONIC_OUTPATIENT": (0.7, 0.1)}.get(
            vtype, (0.55, 0.25)
        )
        panels = [p for c in dx for p in clinical.DIAGNOSES[c].panels]
        exams = [x for c in dx for x in clinical.DIAGNOSES[c].imaging]
        chosen_panels = (
            sorted(set(rng.sample(panels, min(len(panels), _randint(rng, 1, 2)))))
            if panels and rng.random() < lab_p
            else []
        )
        chosen_exam = rng.choice(exams) if exams and rng.random() < imaging_p else None
        cost = sum(_randint(rng, 4_000, 9_000) for _ in chosen_panels)
        if chosen_exam:
            cost += {"CT": 35_000, "MR": 70_000, "DR": 12_000, "US": 15_000}[
                clinical.IMAGING[chosen_exam].modality
            ]
        if not inst.source:
            return cost
        high = {item for c in dx for item in clinical.DIAGNOSES[c].high}
        collected = _at(day + timedelta(days=1 if vtype == "INPATIENT" else 0), rng, 7, 11)
        patient_no = f"{inst.serial}{self.index:010d}"
        if chosen_panels or chosen_exam:
            self._patient(inst, patient_no)
        for panel in chosen_panels:
            for loinc in clinical.PANELS[panel]:
                self._lab(
                    inst,
                    patient_no,
                    mdtrt_id,
                    doctor,
                    clinical.LAB_ITEMS[loinc],
                    collected,
                    loinc in high,
                )
        if chosen_exam:
            self._imaging(
                inst,
                patient_no,
                mdtrt_id,
                doctor,
                clinical.IMAGING[chosen_exam],
                collected + timedelta(minutes=_randint(rng, 20, 240)),
            )
        return cost

    def _patient(self, inst: Institution, patient_no: str) -> None:
        if inst.code in self._patients:
            return
        self._patients.add(inst.code)
        self.records.append(
            (
                f"hospital:{inst.code}",
                "patients",
                {
                    "patient_no": patient_no,
                    "person_ref": self.id_number,
                    "id_number_bidx": self.id_number,
                    "name_enc": self.name,
                    "id_number_enc": self.id_number,
                },
            )
        )

    def _result_id(self, kind: str, inst: Institution) -> str:
        self._results += 1
        return f"{kind}{inst.serial}{self.index:010d}{self._results:04d}"

    def _lab(
        self,
        inst: Institution,
        patient_no: str,
        mdtrt_id: str,
        doctor: str,
        item: clinical.LabItem,
        collected: datetime,
        pushed_high: bool,
    ) -> None:
        rng = self.rng
        span = item.high - item.low
        roll = rng.random()
        if (pushed_high and roll < 0.7) or roll < 0.08:
            value, flag = item.high + span * rng.uniform(0.05, 0.6), "H"
        elif roll < 0.13 and item.low > 0:
            value, flag = item.low - span * rng.uniform(0.05, 0.3), "L"
        else:
            value, flag = rng.uniform(item.low + 0.05 * span, item.high - 0.05 * span), "N"
        value = round(max(value, 0.0), item.decimals)
        self.records.append(
            (
                f"hospital:{inst.code}",
                "test_results",
                {
                    "result_id": self._result_id("L", inst),
                    "person_ref": self.id_number,
                    "patient_no": patient_no,
                    "institution_code": inst.code,
                    "mdtrt_id": mdtrt_id,
                    "category": "LAB",
                    "item_code": item.loinc,
                    "item_name": item.name,
                    "value": value,
                    "unit": item.unit,
                    "ref_low": item.low,
                    "ref_high": item.high,
                    "flag": flag,
                    "modality": None,
                    "body_part": None,
                    "findings_enc": None,
                    "impression_enc": None,
                    "study_uid": None,
                    "ordering_doctor": doctor,
                    "collected_at": collected,
                    "reported_at": collected + timedelta(minutes=_randint(rng, 90, 1_440)),
                },
            )
        )

    def _imaging(
        self,
        inst: Institution,
        patient_no: str,
        mdtrt_id: str,
        doctor: str,
        exam: clinical.ImagingExam,
        collected: datetime,
    ) -> None:
        rng = self.rng
        findings, impression = rng.choice(exam.abnormal) if rng.random() < 0.45 else exam.normal
        result_id = self._result_id("I", inst)
        # 1.2.156 is China's ISO country arc; the rest makes the UID unique per study.
        uid = f"1.2.156.600734.{int(inst.serial)}.{collected:%Y%m%d}.{self.index}.{self._results}"
        self.records.append(
            (
                f"hospital:{inst.code}",
                "test_results",
                {
                    "result_id": result_id,
                    "person_ref": self.id_number,
                    "patient_no": patient_no,
                    "institution_code": inst.code,
                    "mdtrt_id": mdtrt_id,
                    "category": "IMAGING",
                    "item_code": exam.code,
                    "item_name": exam.name,
                    "value": None,
                    "unit": None,
                    "ref_low": None,
                    "ref_high": None,
                    "flag": None,
                    "modality": exam.modality,
                    "body_part": exam.body_part,
                    "findings_enc": findings,
                    "impression_enc": impression,
                    "study_uid": uid,
                    "ordering_doctor": doctor,
                    "collected_at": collected,
                    "reported_at": collected + timedelta(minutes=_randint(rng, 60, 2_880)),
                },
            )
        )

    def _prescription(
        self,
        e: Enrolment,
        inst: Institution,
        vtype: str,
        day: date,
        dx: tuple[str, ...],
        suffix: str,
        doctor: str,
        mdtrt_id: str,
        *,
        circulate: bool,
    ) -> list[benefits.Item]:
        """An e-prescription; returns its drugs as bill items if the hospital dispensed them
        (a circulated prescription is paid at the pharmacy instead)."""
        rng = self.rng
        candidates = [d for c in dx for d in clinical.DIAGNOSES[c].drugs]
        p = {"OUTPATIENT": 0.8, "INPATIENT": 0.5}.get(vtype, 1.0)
        if not candidates or rng.random() >= p:
            return []
        chronic = vtype in ("CHRONIC_OUTPATIENT", "INTERNET_REVISIT")
        drugs = sorted(set(rng.sample(candidates, min(len(candidates), _randint(rng, 1, 3)))))
        rx_id = f"R{suffix}"
        issued = _at(day, rng, 8, 21)
        review = rng.choices(("APPROVED", "REJECTED", "PENDING"), (96, 2, 2))[0]
        if day < DEMO_END - timedelta(days=3) and review == "PENDING":
            review = "APPROVED"  # only the last days' prescriptions can still await review
        pharmacies = institutions.PHARMACIES_BY_PROVINCE[inst.province]
        circulated = None
        if circulate and chronic and review == "APPROVED" and pharmacies and rng.random() < 0.5:
            circulated = rng.choice(pharmacies)
        items, cost = [], 0
        for j, name in enumerate(drugs, 1):
            drug = DRUGS[name]
            quantity = _randint(rng, 1, 3) if chronic else _randint(rng, 1, 2)
            days = 30 * quantity if chronic else _randint(rng, 3, 7)
            items.append(
                {
                    "item_id": f"{rx_id}{j:02d}",
                    "rx_id": rx_id,
                    "drug_code": drug.code,
                    "drug_name": drug.name,
                    "quantity": quantity,
                    "unit": drug.unit,
                    "dosage": drug.dosage,
                    "days": days,
                }
            )
            cost += drug.price_fen * quantity
        signature = hashlib.sha256(f"{rx_id}|{doctor}|{issued:%Y%m%d%H%M}".encode()).hexdigest()
        reviewed = review != "PENDING"
        reviewed_at = issued + timedelta(minutes=_randint(rng, 2, 30)) if reviewed else None
        if circulated is None and review == "APPROVED":
            self._reviewed = reviewed_at  # the hospital dispenses (and bills) after review
        rx = {
            "rx_id": rx_id,
            "mdtrt_id": mdtrt_id,
            "person_ref": self.id_number,
            "institution_code": inst.code,
            "doctor_code": doctor,
            "doctor_signature": f"SM2:{signature}",
            "issued_at": issued,
            "review_status": review,
            "reviewed_by": f"Y{inst.code}{_randint(rng, 1, 9):03d}" if reviewed else None,
            "reviewed_at": reviewed_at,
            "circulated_to": circulated.code if circulated else None,
        }
        self.records.append((bureau(inst.province), "prescriptions", rx))
        for item in items:
            self.records.append((bureau(inst.province), "prescription_items", item))
        bill = [
            benefits.Item(
                item["drug_code"], "DRUG", DRUGS[item["drug_name"]].price_fen * item["quantity"]
            )
            for item in items
        ]
        dispensed = None
        if review == "APPROVED" and circulated is not None:
            dispensed = self._dispense(
                e,
                circulated,
                rx_id,
                issued,
                items,
                bill,
                dx,
                delivered=vtype == "INTERNET_REVISIT" and rng.random() < 0.7,
            )
        if inst.source:
            self._hospital_original(inst, rx, items, dispensed)
        if review == "REJECTED" or circulated is not None:
            return []
        return bill

    def _hospital_original(
        self, inst: Institution, rx: dict, items: list[dict], dispensed: Dispensed | None
    ) -> None:
        """The prescribing hospital's own record of the prescription (the original the bureau
        copied) and its workflow events, consistent with the copy and the pharmacy's rows:
        issued, reviewed by the hospital's pharmacist, circulated by the patient, dispensed,
        shipped and delivered (see connectors.domain.prescriptions)."""
        rx_id, issued = rx["rx_id"], rx["issued_at"]
        midnight = datetime.combine(issued.date(), time())
        # A circulated prescription is valid three days (the most allowed); others the day.
        valid = 3 if rx["circulated_to"] else 1
        review = rx["review_status"]
        status = {"PENDING": "PENDING_REVIEW"}.get(review, review)
        events: list[tuple[str, str | None, str, str, str, str | None, datetime, dict]] = [
            (
                "ISSUED",
                None,
                "PENDING_REVIEW",
                "clinician",
                inst.code,
                rx["doctor_code"],
                issued,
                {"items": len(items), "validDays": valid},
            ),
        ]
        if review != "PENDING":
            reason = "用药禁忌" if review == "REJECTED" else None
            events.append(
                (
                    "REVIEWED",
                    "PENDING_REVIEW",
                    status,
                    "pharmacist",
                    inst.code,
                    rx["reviewed_by"],
                    rx["reviewed_at"],
                    {"decision": review, "reason": reason},
                )
            )
        if rx["circulated_to"]:
            events.append(
                (
                    "CIRCULATED",
                    status,
                    status,
                    "patient",
                    "PATIENT",
                    None,
                    rx["reviewed_at"] + timedelta(minutes=5),
                    {"pharmacy": rx["circulated_to"]},
                )
            )
        if dispensed is not None:
            d = dispensed.row
            events.append(
                (
                    "DISPENSED",
                    "APPROVED",
                    "DISPENSED",
                    "pharmacist",
                    d["pharmacy_code"],
                    d["pharmacist_code"],
                    d["dispensed_at"],
                    dispensed_facts(d),
                )
            )
            status = "DISPENSED"
            for delivery in dispensed.deliveries:
                before, status = status, delivery["event"]
                events.append(
                    (
                        delivery["event"],
                        before,
                        status,
                        "pharmacist",
                        d["pharmacy_code"],
                        None,
                        delivery["at"],
                        {
                            "carrier": delivery["carrier"],
                            "trackingNo": delivery["tracking_no"],
                            "feeFen": d["delivery_fee_fen"],
                            "paidBy": "PATIENT",
                        },
                    )
                )
        destination = f"hospital:{inst.code}"
        self.records.append(
            (
                destination,
                "e_prescriptions",
                {
                    **rx,
                    "expires_at": midnight + timedelta(days=valid),
                    "status": status,
                    "version": len(events),
                },
            )
        )
        for item in items:
            self.records.append((destination, "e_prescription_items", dict(item)))
        for seq, (kind, before, after, role, org, who, at, facts) in enumerate(events, 1):
            values = {
                "event_id": f"E{rx_id[1:]}{seq:02d}",
                "rx_id": rx_id,
                "seq": seq,
                "kind": kind,
                "from_status": before,
                "to_status": after,
                "actor_role": role,
                "actor_org": org,
                "actor_code": who,
                "at": at,
                "detail": canonical_detail(facts),
                "signature": None,
            }
            if kind == "DISPENSED" and dispensed is not None:
                # The bill's split is decided with every settlement (_split_all): its facts
                # are written then.
                self._late_details.append((values, dispensed.row))
            self.records.append((destination, "e_prescription_events", values))

    def _dispense(
        self,
        e: Enrolment,
        pharmacy: Institution,
        rx_id: str,
        issued: datetime,
        items: list[dict],
        bill: list[benefits.Item],
        dx: tuple[str, ...],
        *,
        delivered: bool,
    ) -> Dispensed | None:
        rng = self.rng
        # Within two days, so before the end of the third day of validity.
        when = issued + timedelta(hours=_randint(rng, 1, 48))
        day = min(when.date(), DEMO_END)
        dispensed = None
        if pharmacy.source:
            dispensing_id = f"D{rx_id[1:]}"
            dispensed = Dispensed(
                {
                    "dispensing_id": dispensing_id,
                    "rx_id": rx_id,
                    "person_ref": self.id_number,
                    "pharmacy_code": pharmacy.code,
                    "pharmacist_code": f"Y{pharmacy.code}{_randint(rng, 1, 5):03d}",
                    "dispensed_at": when,
                    # the split: filled in by _split_all, as for the settlement
                    "total_fen": 0,
                    "fund_pay_fen": 0,
                    "acct_pay_fen": 0,
                    "cash_pay_fen": 0,
                    "delivered": delivered,
                    # Delivery is paid by the patient on top of the bill, never by the fund.
                    "delivery_fee_fen": rng.choice((600, 800, 1_000, 1_200)) if delivered else 0,
                    # the credential shown at the counter: mostly the e-credential
                    "cert_type": rng.choices(("01", "02", "03"), (70, 20, 10))[0],
                },
            )
            self.records.append((f"pharmacy:{pharmacy.code}", "dispensings", dispensed.row))
            if delivered:
                tracking = f"SF{self.index:010d}{self._next():03d}"
                shipped = when + timedelta(hours=_randint(rng, 1, 6))
                for event, at in (
                    ("SHIPPED", shipped),
                    ("DELIVERED", shipped + timedelta(hours=_randint(rng, 12, 48))),
                ):
                    delivery = {
                        "delivery_id": f"S{event[0]}{rx_id[1:]}",
                        "dispensing_id": dispensing_id,
                        "rx_id": rx_id,
                        "person_ref": self.id_number,
                        "pharmacy_code": pharmacy.code,
                        "event": event,
                        "carrier": "顺丰速运",
                        "tracking_no": tracking,
                        "fee_fen": dispensed.row["delivery_fee_fen"] if event == "SHIPPED" else 0,
                        "paid_by": "PATIENT",
                        "at": at,
                    }
                    dispensed.deliveries.append(delivery)
                    self.records.append((f"pharmacy:{pharmacy.code}", "rx_deliveries", delivery))
            for j, item in enumerate(items, 1):
                self.records.append(
                    (
                        f"pharmacy:{pharmacy.code}",
                        "dispensing_items",
                        {
                            "item_id": f"{dispensing_id}{j:02d}",
                            "dispensing_id": dispensing_id,
                            "drug_code": item["drug_code"],
                            "drug_name": item["drug_name"],
                            "quantity": item["quantity"],
                            "unit": item["unit"],
                            "amount_fen": DRUGS[item["drug_name"]].price_fen * item["quantity"],
                        },
                    )
                )
        # The purchase is also a PHARMACY visit, settled by the bureau with the same split.
        suffix = f"{pharmacy.province[:2]}{self.index:010d}{self._next():03d}"
        self.records.append(
            (
                bureau(pharmacy.province),
                "visits",
                {
                    "mdtrt_id": f"V{suffix}",
                    "person_ref": self.id_number,
                    "institution_code": pharmacy.code,
                    "visit_type": "PHARMACY",
                    "begin_date": day,
                    "end_date": day,
                    "diagnosis_codes": ",".join(dx),
                    "diagnosis_text_enc": "；".join(clinical.DIAGNOSES[c].text for c in dx),
                    "doctor_code": f"Y{pharmacy.code}001",
                    "insuplc_admdvs": e.pool,
                    "mdtrtarea_admvs": pharmacy.city,
                    "cross_region": pharmacy.city != e.pool,
                },
            )
        )
        row = self._settlement_row(
            e,
            pharmacy,
            "PHARMACY",
            when,
            suffix,
            f"V{suffix}",
            None if dispensed is None else str(dispensed.row["dispensing_id"]),
        )
        rows = [row] + ([dispensed.row] if dispensed is not None else [])
        self._pending.append(
            Pending(when, str(row["setl_id"]), e, pharmacy, "PHARMACY", dx, day, bill, False, rows)
        )
        return dispensed

    def _settle(
        self,
        e: Enrolment,
        inst: Institution,
        vtype: str,
        begin: date,
        end: date,
        dx: tuple[str, ...],
        suffix: str,
        mdtrt_id: str,
        items: list[benefits.Item],
        filing: Filing | None,
    ) -> None:
        rng = self.rng
        when = _at(end, rng, 9, 20)
        if self._reviewed is not None and when <= self._reviewed:
            when = self._reviewed + timedelta(minutes=_randint(rng, 5, 60))
        self._reviewed = None
        if filing is None:
            row = self._settlement_row(e, inst, vtype, when, suffix, mdtrt_id)
            self._pending.append(
                Pending(when, str(row["setl_id"]), e, inst, vtype, dx, begin, items, False, [row])
            )
            return
        month = f"{when:%Y-%m}"
        row = {
            "setl_id": f"X{suffix}",
            "mdtrt_id": mdtrt_id,
            "filing_id": filing.filing_id,
            "person_ref": self.id_number,
            "institution_code": inst.code,
            "med_type": vtype,
            "setl_time": when,
            "insuplc_admdvs": e.pool,
            "mdtrtarea_admvs": inst.city,
            "clearing_status": "PENDING" if month >= CURRENT_MONTH else "CLEARED",
            "clearing_month": month,
        }
        self.records.append(("platform", "cross_settlements", row))
        self._pending.append(
            Pending(when, f"X{suffix}", e, inst, vtype, dx, begin, items, True, [row])
        )

    def _settlement_row(
        self,
        e: Enrolment,
        inst: Institution,
        vtype: str,
        when: datetime,
        suffix: str,
        mdtrt_id: str,
        dispensing_id: str | None = None,
    ) -> dict[str, object]:
        row: dict[str, object] = {
            "setl_id": f"S{suffix}",
            "mdtrt_id": mdtrt_id,
            "person_ref": self.id_number,
            "institution_code": inst.code,
            "med_type": vtype,
            "setl_time": when,
            "insuplc_admdvs": e.pool,
            "mdtrtarea_admvs": inst.city,
            "cross_province": False,
            "clearing_status": "PENDING" if f"{when:%Y-%m}" >= CURRENT_MONTH else "CLEARED",
            # A pharmacy purchase's settlement names the dispensing it pays for.
            "dispensing_id": dispensing_id,
        }
        self.records.append((bureau(inst.province), "settlements", row))
        return row


def _randint(rng: random.Random, low: int, high: int) -> int:
    # random.randint is several times slower than one random() call; this is the hot path.
    return low + int(rng.random() * (high - low + 1))


def _below(rng: random.Random, n: int) -> int:
    return int(rng.random() * n)


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in table], [w for _, w in table])[0]


def _pick(
    rng: random.Random,
    hospitals: tuple[Institution, ...],
    weights: tuple[float, ...],
    *,
    inpatient: bool = False,
) -> Institution:
    if inpatient:  # community centres (PRIMARY) rarely admit
        pairs = [
            (h, w)
            for h, w in zip(hospitals, weights, strict=True)
            if h.level != institutions.PRIMARY
        ]
        hospitals, weights = tuple(h for h, _ in pairs), tuple(w for _, w in pairs)
    return rng.choices(hospitals, weights)[0]


def generate_person(seed: int, index: int) -> list[Record]:
    return PersonGenerator(seed, index).run()


def clearing_key(values: dict[str, object]) -> tuple[str, str, str]:
    """(month, payer province, payee province) of a cross-province settlement."""
    return (
        str(values["clearing_month"]),
        str(values["insuplc_admdvs"])[:2] + "0000",
        str(values["mdtrtarea_admvs"])[:2] + "0000",
    )


def clearing_records(totals: dict[tuple[str, str, str], list[int]]) -> list[Record]:
    """The platform's monthly clearings, aggregated from its cross-province settlements."""
    return [
        (
            "platform",
            "clearings",
            {
                "clearing_id": f"C{month.replace('-', '')}{payer[:2]}{payee[:2]}",
                "month": month,
                "payer_province": payer,
                "payee_province": payee,
                "settlement_count": count,
                "total_fen": total,
                "fund_pay_fen": fund,
                "status": "OPEN" if month >= CURRENT_MONTH else "CLEARED",
            },
        )
        for (month, payer, payee), (count, total, fund) in sorted(totals.items())
    ]
