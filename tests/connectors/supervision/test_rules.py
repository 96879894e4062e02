"""The claims rule base: each rule with a claim that hits it and one that does not, and the
strict parse of the file."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from connectors.domain.benefits import default_benefits
from connectors.supervision import rules as r

BENEFITS = default_benefits()
RULES = r.default_rules()
DAY = date(2020, 6, 10)


def visit(mdtrt="V1", vtype="OUTPATIENT", begin=DAY, end=None, inst="H33010600001", dx="J06.9"):
    return {
        "mdtrt_id": mdtrt,
        "person_ref": "p",
        "institution_code": inst,
        "visit_type": vtype,
        "begin_date": begin,
        "end_date": end,
        "diagnosis_codes": dx,
        "doctor_code": "DH33010600001007",
    }


def claim(**kw):
    return {
        "setl_id": "S1",
        "mdtrt_id": "V1",
        "person_ref": "p",
        "institution_code": "H33010600001",
        "med_type": "OUTPATIENT",
        "setl_time": datetime(2020, 6, 10, 11),
        "insuplc_admdvs": "330106",
        "mdtrtarea_admvs": "330106",
        "total_fen": 32_050,
        "in_policy_fen": 30_000,
        "fund_pay_fen": 6_000,
    } | kw


def hits(rule_id: str, c: dict, f: r.Facts) -> str | None:
    rule = RULES.get(rule_id)
    return r.CHECKS[rule_id][0](rule, c, f, BENEFITS)


def test_duplicate_billing():
    other = claim(setl_id="S0", mdtrt_id="V0", setl_time=datetime(2020, 6, 10, 9))
    f = r.Facts(visit(), settlements=[other])
    assert "S0" in hits("DUPLICATE_BILLING", claim(), f)
    assert hits("DUPLICATE_BILLING", claim(total_fen=32_051), f) is None
    later = claim(setl_time=datetime(2020, 6, 11, 9, 1))  # a day and a minute after
    assert hits("DUPLICATE_BILLING", later, f) is None
    at_window = claim(setl_time=datetime(2020, 6, 11, 9))
    assert hits("DUPLICATE_BILLING", at_window, f) is not None


def test_settlement_without_visit():
    assert hits("SETTLEMENT_WITHOUT_VISIT", claim(), r.Facts(None)) is not None
    stranger = visit() | {"person_ref": "q"}
    assert hits("SETTLEMENT_WITHOUT_VISIT", claim(), r.Facts(stranger)) is not None
    assert hits("SETTLEMENT_WITHOUT_VISIT", claim(), r.Facts(visit())) is None


def test_internet_revisit_needs_an_earlier_offline_diagnosis_of_the_same_disease():
    online = visit(vtype="INTERNET_REVISIT", dx="I10,E11.9", inst="H33010600001")
    c = claim(med_type="INTERNET_REVISIT")
    first = visit("V0", "CHRONIC_OUTPATIENT", DAY - timedelta(days=90), dx="I10,E11.9")
    assert hits("REVISIT_WITHOUT_OFFLINE_DIAGNOSIS", c, r.Facts(online, visits=[first])) is None
    half = visit("V0", "CHRONIC_OUTPATIENT", DAY - timedelta(days=90), dx="I10")
    found = hits("REVISIT_WITHOUT_OFFLINE_DIAGNOSIS", c, r.Facts(online, visits=[half]))
    assert found is not None and "E11" in found and "I10" not in found
    earlier_online = visit("V0", "INTERNET_REVISIT", DAY - timedelta(days=90), dx="I10,E11.9")
    assert hits("REVISIT_WITHOUT_OFFLINE_DIAGNOSIS", c, r.Facts(online, visits=[earlier_online]))
    too_old = visit("V0", "OUTPATIENT", DAY - timedelta(days=731), dx="I10,E11.9")
    assert hits("REVISIT_WITHOUT_OFFLINE_DIAGNOSIS", c, r.Facts(online, visits=[too_old]))
    just_in = visit("V0", "OUTPATIENT", DAY - timedelta(days=730), dx="I10,E11.9")
    assert hits("REVISIT_WITHOUT_OFFLINE_DIAGNOSIS", c, r.Facts(online, visits=[just_in])) is None
    # an offline visit is no revisit
    assert hits("REVISIT_WITHOUT_OFFLINE_DIAGNOSIS", claim(), r.Facts(visit(), visits=[])) is None


def test_cross_province_outpatient_outside_pilots_or_listed_diseases():
    away = {"insuplc_admdvs": "330106", "mdtrtarea_admvs": "220102"}
    f = r.Facts(visit(inst="H22010200005"))
    assert "220000" in hits("CROSS_PROVINCE_OUTPATIENT", claim(**away), f)
    pilot = {"insuplc_admdvs": "220102", "mdtrtarea_admvs": "330106"}
    assert hits("CROSS_PROVINCE_OUTPATIENT", claim(**pilot), r.Facts(visit())) is None
    assert hits("CROSS_PROVINCE_OUTPATIENT", claim(), r.Facts(visit())) is None  # at home
    chronic = claim(med_type="CHRONIC_OUTPATIENT", **pilot)
    listed = r.Facts(visit(vtype="CHRONIC_OUTPATIENT", dx="E11.9"))
    assert hits("CROSS_PROVINCE_OUTPATIENT", chronic, listed) is None
    unlisted = r.Facts(visit(vtype="CHRONIC_OUTPATIENT", dx="J44.9"))
    assert hits("CROSS_PROVINCE_OUTPATIENT", chronic, unlisted) is not None
    stay = claim(med_type="INPATIENT", **away)
    assert hits("CROSS_PROVINCE_OUTPATIENT", stay, f) is None


def test_over_the_annual_cap():
    enrolment = {
        "pool_admdvs": "330106",
        "insutype": "EMPLOYEE",
        "begin_date": date(2015, 1, 1),
        "end_date": None,
    }
    cap = BENEFITS.region_for("330106").types["EMPLOYEE"].annual_cap_fen
    earlier = claim(setl_id="S0", setl_time=datetime(2020, 3, 1), fund_pay_fen=cap - 6_000)
    f = r.Facts(visit(), settlements=[earlier], enrolments=[enrolment])
    assert hits("OVER_ANNUAL_CAP", claim(), f) is not None  # exactly reaches it
    assert hits("OVER_ANNUAL_CAP", claim(fund_pay_fen=5_999), f) is None
    last_year = claim(setl_time=datetime(2021, 1, 2))
    assert hits("OVER_ANNUAL_CAP", last_year, f) is None
    assert hits("OVER_ANNUAL_CAP", claim(fund_pay_fen=0), f) is None  # nothing more paid


def test_unreviewed_prescription():
    rx = {
        "rx_id": "R1",
        "mdtrt_id": "V1",
        "review_status": "APPROVED",
        "reviewed_at": datetime(2020, 6, 10, 10),
        "circulated_to": None,
    }
    assert hits("UNREVIEWED_PRESCRIPTION", claim(), r.Facts(visit(), prescriptions=[rx])) is None
    pending = rx | {"review_status": "PENDING", "reviewed_at": None}
    assert hits("UNREVIEWED_PRESCRIPTION", claim(), r.Facts(visit(), prescriptions=[pending]))
    after = rx | {"reviewed_at": datetime(2020, 6, 10, 12)}  # approved after it was billed
    assert hits("UNREVIEWED_PRESCRIPTION", claim(), r.Facts(visit(), prescriptions=[after]))
    elsewhere = pending | {"circulated_to": "P33010600101"}  # paid at the pharmacy
    assert (
        hits("UNREVIEWED_PRESCRIPTION", claim(), r.Facts(visit(), prescriptions=[elsewhere]))
        is None
    )


def test_a_circulated_prescription_dispensed_before_its_review():
    """The pharmacy's dispensing is the bill of a circulated prescription: dispensed before
    the approval (or with none) hits, dispensed after it does not."""
    approved_at = datetime(2020, 6, 10, 9)
    rx = {
        "rx_id": "RX1",
        "review_status": "APPROVED",
        "reviewed_at": approved_at,
        "circulated_to": "P33010600101",
    }

    def dispensed(at):
        return {"rx_id": "RX1", "pharmacy_code": "P33010600101", "dispensed_at": at}

    def facts(prescription, *at):
        return r.Facts(
            visit(), prescriptions=[prescription], dispensings={"RX1": [dispensed(t) for t in at]}
        )

    after = approved_at + timedelta(hours=2)
    assert hits("UNREVIEWED_PRESCRIPTION", claim(), facts(rx, after)) is None
    assert hits("UNREVIEWED_PRESCRIPTION", claim(), facts(rx, approved_at)) is None  # boundary
    early = hits("UNREVIEWED_PRESCRIPTION", claim(), facts(rx, approved_at - timedelta(minutes=1)))
    assert early is not None and "dispensed at P33010600101" in early
    pending = rx | {"review_status": "PENDING", "reviewed_at": None}
    assert hits("UNREVIEWED_PRESCRIPTION", claim(), facts(pending, after)) is not None
    rejected = rx | {"review_status": "REJECTED"}
    assert hits("UNREVIEWED_PRESCRIPTION", claim(), facts(rejected, after)) is not None
    assert hits("UNREVIEWED_PRESCRIPTION", claim(), facts(pending)) is None  # not dispensed


def test_one_person_in_two_places_at_once():
    stay = visit("V1", "INPATIENT", DAY, DAY + timedelta(days=5))
    c = claim(med_type="INPATIENT")
    inside = visit("V2", "OUTPATIENT", DAY + timedelta(days=2), inst="H33020300002")
    assert hits("SIMULTANEOUS_CARE", c, r.Facts(stay, visits=[stay, inside])) is not None
    on_discharge = visit("V2", "OUTPATIENT", DAY + timedelta(days=5), inst="H33020300002")
    assert hits("SIMULTANEOUS_CARE", c, r.Facts(stay, visits=[stay, on_discharge])) is None
    same_place = visit("V2", "OUTPATIENT", DAY + timedelta(days=2))
    assert hits("SIMULTANEOUS_CARE", c, r.Facts(stay, visits=[stay, same_place])) is None
    transfer = visit(
        "V2", "INPATIENT", DAY + timedelta(days=5), DAY + timedelta(days=9), "H33020300002"
    )
    assert hits("SIMULTANEOUS_CARE", c, r.Facts(stay, visits=[stay, transfer])) is None
    overlap = visit(
        "V2", "INPATIENT", DAY + timedelta(days=4), DAY + timedelta(days=9), "H33020300002"
    )
    assert hits("SIMULTANEOUS_CARE", c, r.Facts(stay, visits=[stay, overlap])) is not None
    # two outpatient visits the same day: in two cities, not in one
    here = visit()
    ningbo = visit("V2", inst="H33020300002")
    assert hits("SIMULTANEOUS_CARE", claim(), r.Facts(here, visits=[here, ningbo])) is not None
    hangzhou = visit("V2", inst="H33010200006")
    assert hits("SIMULTANEOUS_CARE", claim(), r.Facts(here, visits=[here, hangzhou])) is None
    online = visit("V2", "INTERNET_REVISIT", inst="H33020300002")
    assert hits("SIMULTANEOUS_CARE", claim(), r.Facts(here, visits=[here, online])) is None


def test_unusual_volume_per_doctor():
    limit = RULES.get("DOCTOR_VOLUME").params["max_visits_per_day"]
    assert hits("DOCTOR_VOLUME", claim(), r.Facts(visit(), doctor_day_visits=limit)) is None
    assert hits("DOCTOR_VOLUME", claim(), r.Facts(visit(), doctor_day_visits=limit + 1))
    sale = visit(vtype="PHARMACY", inst="P33010600101")  # a pharmacist's sales
    assert hits("DOCTOR_VOLUME", claim(), r.Facts(sale, doctor_day_visits=limit + 1)) is None


def test_review_runs_every_enabled_rule_in_order_and_grades_them():
    f = r.Facts(None)
    found = RULES.review(claim(), f, BENEFITS)
    assert [h.rule for h in found] == ["SETTLEMENT_WITHOUT_VISIT"]
    assert found[0].grade == 4 and RULES.get("SETTLEMENT_WITHOUT_VISIT").blocking
    off = r.parse_rules(
        r.RULES_FILE.read_text(encoding="utf-8").replace(
            "grade = 4\n\n[rules.REVISIT", "grade = 4\nenabled = false\n\n[rules.REVISIT", 1
        )
    )
    assert off.review(claim(), f, BENEFITS) == []


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("[rules.DOCTOR_VOLUME]", "[rules.DOCTOR_MOOD]", "rules.DOCTOR_MOOD"),
        (
            "max_visits_per_day = 60",
            "max_visits_per_day = -1",
            "rules.DOCTOR_VOLUME.max_visits_per_day",
        ),
        (
            "window_days = 1",
            "window_days = 1\nwindow_hours = 2",
            "rules.DUPLICATE_BILLING.window_hours",
        ),
        (
            'pilot_provinces = ["330000"',
            'pilot_provinces = ["330100"',
            "rules.CROSS_PROVINCE_OUTPATIENT.pilot_provinces",
        ),
        ("grade = 2\nmax_visits", "grade = 5\nmax_visits", "rules.DOCTOR_VOLUME.grade"),
        ("window_days = 1", "", "rules.DUPLICATE_BILLING.window_days"),
    ],
)
def test_a_bad_rule_base_is_refused_in_one_line_naming_the_key(old, new, key):
    text = r.RULES_FILE.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(r.RulesError) as caught:
        r.parse_rules(text.replace(old, new, 1))
    assert str(caught.value).startswith(key + ":") and "\n" not in str(caught.value)
