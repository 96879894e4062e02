"""Benefits by rule: the split for each insurance type and level, cross-province care, the
deductible and cap boundaries, online = offline, and the strict parse of the file."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.domain import benefits as b

FILE = """
[catalogues."330000"]
class_b_self_share = 0.10
[catalogues."330000".items]
"A1" = "甲"
"B1" = "乙"
"C1" = "丙"
[catalogues."220000"]
class_b_self_share = 0.20
[catalogues."220000".items]
"A1" = "乙"

[regions."330100"]
name = "杭州市"
chronic_diseases = ["I10", "E11"]
common_diseases = ["J06"]
elsewhere_points = 10
[regions."330100".EMPLOYEE]
annual_cap = 1000
account = true
inpatient = { deductible = 100, per = "ADMISSION", ratios = { TERTIARY = 0.80, SECONDARY = 0.85, PRIMARY = 0.90 } }
outpatient = { deductible = 50, per = "YEAR", ratios = { TERTIARY = 0.50, SECONDARY = 0.60, PRIMARY = 0.70, NONE = 0.40 } }
chronic = { deductible = 0, per = "YEAR", ratios = { TERTIARY = 0.75, SECONDARY = 0.80, PRIMARY = 0.85 } }
[regions."330100".RESIDENT]
annual_cap = 800
account = false
inpatient = { deductible = 200, per = "ADMISSION", ratios = { TERTIARY = 0.60, SECONDARY = 0.65, PRIMARY = 0.70 } }
outpatient = { deductible = 0, per = "YEAR", ratios = { TERTIARY = 0.40, SECONDARY = 0.45, PRIMARY = 0.50 } }
chronic = { deductible = 0, per = "YEAR", ratios = { TERTIARY = 0.55, SECONDARY = 0.60, PRIMARY = 0.65 } }
"""  # noqa: E501


@pytest.fixture(scope="module")
def rules() -> b.Benefits:
    return b.parse_benefits(FILE)


def split(rules, total, in_policy, **kw) -> b.Split:
    args = (
        dict(
            insurance_type="EMPLOYEE",
            level="TERTIARY",
            medical_type="INPATIENT",
            diagnoses=["J18.9"],
            cross_province=False,
            account_balance_fen=10**9,
        )
        | kw
    )
    return b.compute(rules.regions["330100"], b.Bill(total, in_policy), **args)


def parts(s: b.Split) -> tuple[int, int, int]:
    assert s.fund_fen + s.account_fen + s.cash_fen == s.total_fen
    return s.fund_fen, s.account_fen, s.cash_fen


@pytest.mark.parametrize(
    ("insurance", "level", "ratio", "account"),
    [
        ("EMPLOYEE", "TERTIARY", "0.80", True),
        ("EMPLOYEE", "SECONDARY", "0.85", True),
        ("EMPLOYEE", "PRIMARY", "0.90", True),
        ("RESIDENT", "TERTIARY", "0.60", False),
        ("RESIDENT", "SECONDARY", "0.65", False),
        ("RESIDENT", "PRIMARY", "0.70", False),
    ],
)
def test_inpatient_split_per_insurance_type_and_level(rules, insurance, level, ratio, account):
    deductible = 10_000 if insurance == "EMPLOYEE" else 20_000
    s = split(rules, 60_000, 50_000, insurance_type=insurance, level=level)
    fund = int((50_000 - deductible) * Decimal(ratio))
    personal = 50_000 - fund
    assert parts(s) == (
        fund,
        personal if account else 0,
        60_000 - fund - (personal if account else 0),
    )
    assert s.scheme == "inpatient" and s.ratio == Decimal(ratio)
    assert s.deductible_fen == deductible


def test_outpatient_at_a_pharmacy_and_a_level_the_scheme_does_not_pay(rules):
    s = split(rules, 10_000, 10_000, medical_type="PHARMACY", level="NONE")
    assert parts(s) == (2_000, 8_000, 0)  # (100 - 50) * 0.40
    s = split(
        rules, 10_000, 10_000, medical_type="PHARMACY", level="NONE", insurance_type="RESIDENT"
    )
    assert parts(s) == (0, 0, 10_000) and s.scheme is None
    assert "level NONE" in s.notes[0]


def test_cross_province_uses_the_insured_places_ratio_less_its_points(rules):
    home = split(rules, 60_000, 50_000)
    away = split(rules, 60_000, 50_000, cross_province=True)
    assert home.fund_fen == 32_000 and away.fund_fen == 28_000  # 0.80 and 0.70 of 400 yuan
    assert away.ratio == Decimal("0.70")


def test_cross_province_prices_by_the_treatment_places_catalogue(rules):
    items = [
        b.Item("A1", "DRUG", 10_000),
        b.Item("B1", "DRUG", 10_000),
        b.Item("C1", "DRUG", 5_000),
    ]
    here = b.price(rules.catalogue_for("330106"), items)
    assert (here.total_fen, here.in_policy_fen) == (25_000, 19_000)  # 甲 + 乙 less 10 %
    there = b.price(rules.catalogue_for("220102"), items)  # A1 is 乙 there, B1 and C1 unlisted
    assert (there.total_fen, there.in_policy_fen) == (25_000, 8_000)
    assert rules.catalogue_for("370102") is None


def test_delivery_is_never_paid_by_the_fund_or_the_account(rules):
    bill = b.price(
        rules.catalogue_for("330106"), [b.Item("A1", "DRUG", 10_000), b.Item("A1", "DELIVERY", 800)]
    )
    assert (bill.total_fen, bill.in_policy_fen, bill.delivery_fen) == (10_800, 10_000, 800)
    s = b.compute(
        rules.regions["330100"],
        bill,
        insurance_type="EMPLOYEE",
        level="TERTIARY",
        medical_type="INTERNET_REVISIT",
        diagnoses=["I10"],
        cross_province=False,
        account_balance_fen=10**9,
    )
    assert parts(s) == (7_500, 2_500, 800)


def test_the_admission_deductible_boundary(rules):
    assert parts(split(rules, 10_000, 10_000)) == (0, 10_000, 0)  # exactly the deductible
    assert parts(split(rules, 10_001, 10_001)) == (0, 10_001, 0)  # 1 fen * 0.8 rounds down
    assert parts(split(rules, 10_002, 10_002))[0] == 1
    # an admission's deductible is borne again by each admission
    earlier = [b.Earlier("INPATIENT", 50_000, 1_000)]
    assert split(rules, 20_000, 20_000, earlier=earlier).deductible_fen == 10_000


def test_the_yearly_deductible_counts_the_years_earlier_in_policy_amounts(rules):
    first = split(rules, 3_000, 3_000, medical_type="OUTPATIENT")
    assert parts(first) == (0, 3_000, 0) and first.deductible_fen == 3_000
    earlier = [b.Earlier("OUTPATIENT", 3_000, 0)]
    second = split(rules, 3_000, 3_000, medical_type="OUTPATIENT", earlier=earlier)
    assert second.deductible_fen == 2_000 and second.fund_fen == 500  # (30 - 20) * 0.5
    done = [b.Earlier("OUTPATIENT", 5_000, 0)]
    assert split(rules, 3_000, 3_000, medical_type="OUTPATIENT", earlier=done).fund_fen == 1_500
    # an inpatient stay does not count toward the outpatient deductible
    other = [b.Earlier("INPATIENT", 5_000, 0)]
    assert split(rules, 3_000, 3_000, medical_type="OUTPATIENT", earlier=other).fund_fen == 0


def test_the_annual_cap_boundary(rules):
    cap = 100_000
    below = [b.Earlier("INPATIENT", 0, cap - 32_000)]
    assert split(rules, 60_000, 50_000, earlier=below).fund_fen == 32_000  # exactly reaches it
    assert not split(rules, 60_000, 50_000, earlier=below).capped
    near = [b.Earlier("INPATIENT", 0, cap - 31_999)]
    capped = split(rules, 60_000, 50_000, earlier=near)
    assert capped.fund_fen == 31_999 and capped.capped
    assert parts(capped) == (31_999, 50_000 - 31_999, 10_000)
    spent = [b.Earlier("OUTPATIENT", 0, cap)]
    assert split(rules, 60_000, 50_000, earlier=spent).fund_fen == 0


def test_online_equals_offline_and_only_common_or_chronic_revisits_are_paid(rules):
    offline = split(rules, 5_000, 5_000, medical_type="CHRONIC_OUTPATIENT", diagnoses=["E11.9"])
    online = split(rules, 5_000, 5_000, medical_type="INTERNET_REVISIT", diagnoses=["E11.9"])
    assert parts(offline) == parts(online) == (3_750, 1_250, 0)
    common = split(rules, 10_000, 10_000, medical_type="INTERNET_REVISIT", diagnoses=["J06.9"])
    walk_in = split(rules, 10_000, 10_000, medical_type="OUTPATIENT", diagnoses=["J06.9"])
    assert parts(common) == parts(walk_in) == (2_500, 7_500, 0)
    other = split(rules, 10_000, 10_000, medical_type="INTERNET_REVISIT", diagnoses=["J18.9"])
    assert other.fund_fen == 0 and other.scheme is None
    assert (
        split(rules, 5_000, 5_000, medical_type="CHRONIC_OUTPATIENT", diagnoses=["J06.9"]).fund_fen
        == 0
    )


def test_the_personal_account_pays_up_to_its_balance(rules):
    s = split(rules, 60_000, 50_000, account_balance_fen=5_000)
    assert parts(s) == (32_000, 5_000, 23_000)


def test_region_lookup_is_most_specific_first(rules):
    assert rules.region_for("330106").code == "330100"
    assert rules.region_for("330206") is None


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (
            ("ratios = { TERTIARY = 0.80,", "ratios = { TERTIARY = 1.80,"),
            "regions.330100.EMPLOYEE.inpatient.ratios.TERTIARY",
        ),
        (("annual_cap = 1000", "annual_cap = -1"), "regions.330100.EMPLOYEE.annual_cap"),
        (('"C1" = "丙"', '"C1" = "丁"'), "catalogues.330000.items.C1"),
        (("elsewhere_points = 10", "elsewhere_points = 10\nbonus = 1"), "regions.330100.bonus"),
        (('per = "ADMISSION"', 'per = "MONTH"'), "regions.330100.EMPLOYEE.inpatient.per"),
        (
            ('chronic_diseases = ["I10", "E11"]', 'chronic_diseases = ["I1O"]'),
            "regions.330100.chronic_diseases",
        ),
        (('[regions."330100"]', '[regions."33010"]'), "regions.33010"),
        (("account = true", 'account = "yes"'), "regions.330100.EMPLOYEE.account"),
        (
            (
                "SECONDARY = 0.85, PRIMARY = 0.90 }",
                "SECONDARY = 0.85, PRIMARY = 0.90, CLINIC = 0.9 }",
            ),
            "regions.330100.EMPLOYEE.inpatient.ratios.CLINIC",
        ),
    ],
)
def test_a_bad_file_is_refused_in_one_line_naming_the_key(change, key):
    old, new = change
    assert old in FILE
    with pytest.raises(b.BenefitsError) as caught:
        b.parse_benefits(FILE.replace(old, new, 1))
    message = str(caught.value)
    assert message.startswith(key + ":") and "\n" not in message


def test_the_shipped_file_parses_and_covers_the_demo():
    rules = b.load_benefits()
    from connectors.demo import regions

    for city in regions.CITIES:
        assert rules.region_for(city) is not None
    for province in regions.PROVINCES:
        assert rules.catalogue_for(province) is not None
