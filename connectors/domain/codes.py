"""National code formats: GB/T 2260 regions, institution codes, ID numbers, ICD-10, LOINC.

Validators return ``None`` when a code is well formed and a short English reason otherwise,
so callers can gather every problem of an input before answering.
"""

from __future__ import annotations

import re
from datetime import date

from security.identifiers import ID_NUMBER_RE, normalise_id_number

REGION_RE = re.compile(r"^[1-8]\d{5}$", re.ASCII)
INSTITUTION_RE = re.compile(r"^H(\d{6})(\d{5})$", re.ASCII)
PHARMACY_RE = re.compile(r"^P(\d{6})(\d{5})$", re.ASCII)
# Open-data partners, in the same shape: R for a research institute (高校院所), C for a
# commercial insurer (商业保险公司).
PARTNER_RE = re.compile(r"^([RC])(\d{6})(\d{5})$", re.ASCII)
ICD10_RE = re.compile(r"^[A-TV-Z]\d{2}(\.\d{1,4})?$", re.ASCII)
LOINC_RE = re.compile(r"^(\d{1,7})-(\d)$", re.ASCII)

# Filing categories (备案类别) and channels (备案渠道): the one vocabulary the platform stores,
# the mutation accepts and the API answers (schema/mutations/enums.py mirrors it). Categories
# name kinds of person, as the national rules do (异地安置退休人员, 异地长期居住人员, ...).
FILING_CATEGORIES = (
    "RELOCATED_RETIREE",
    "LONG_TERM_RESIDENT",
    "REFERRAL",
    "TEMPORARY",
    "EMERGENCY",
)
FILING_CHANNELS = ("APP", "MINI_PROGRAM", "PHONE", "COUNTER", "WEB")

# GB/T 2260 province codes (first two digits) that exist.
PROVINCE_PREFIXES = frozenset(
    (
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
    )
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of a citizen ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def validate_region(code: str) -> str | None:
    if not isinstance(code, str) or not REGION_RE.match(code):
        return f"'{code}' is not a six-digit GB/T 2260 region code"
    if code[:2] not in PROVINCE_PREFIXES:
        return f"'{code}' names no province (prefix {code[:2]} is not a GB/T 2260 province)"
    return None


def validate_province(code: str) -> str | None:
    problem = validate_region(code)
    if problem:
        return problem
    if not code.endswith("0000"):
        return f"'{code}' is not a province-level code (it must end in 0000)"
    return None


def province_of(region: str) -> str:
    return region[:2] + "0000"


def validate_institution(code: str) -> str | None:
    match = INSTITUTION_RE.match(code) if isinstance(code, str) else None
    if not match:
        return f"'{code}' is not an institution code (H + six-digit region + five digits)"
    return validate_region(match.group(1))


def validate_partner(code: str) -> str | None:
    """A research institute (R…) or commercial insurer (C…) code."""
    match = PARTNER_RE.match(code) if isinstance(code, str) else None
    if not match:
        return (
            f"'{code}' is not a research institute or insurer code (R or C + six-digit "
            "region + five digits)"
        )
    return validate_region(match.group(2))


def validate_pharmacy(code: str) -> str | None:
    match = PHARMACY_RE.match(code) if isinstance(code, str) else None
    if not match:
        return f"'{code}' is not a pharmacy code (P + six-digit region + five digits)"
    return validate_region(match.group(1))


DRUG_RE = re.compile(r"^[XZ][0-9A-Z]{19,22}$")


def validate_drug_code(code: str) -> str | None:
    """A national medical-insurance drug code (医保药品编码): X (western) or Z (Chinese patent
    medicine) and 19-22 of 0-9 A-Z."""
    if not isinstance(code, str) or not DRUG_RE.match(code):
        return "is not a national drug code (X or Z and 19-22 of 0-9 A-Z)"
    return None


def region_of_institution(code: str) -> str:
    return code[1:7]


def validate_id_number(value: str) -> str | None:
    """Why ``value`` is not a valid ID number, or None. Checks the normalised form
    (``security.identifiers``), the one blind indexes and lookups use."""
    if not isinstance(value, str):
        return "not an 18-character citizen ID number"
    value = normalise_id_number(value)
    if not ID_NUMBER_RE.match(value):
        return "not an 18-character citizen ID number"
    if validate_region(value[:6]):
        return "the first six digits are not a GB/T 2260 region code"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "digits 7 to 14 are not a valid birth date"
    if id_check_digit(value[:17]) != value[17]:
        return "the check digit is wrong"
    return None


def validate_icd10(code: str) -> str | None:
    if not isinstance(code, str) or not ICD10_RE.match(code):
        return f"'{code}' is not an ICD-10 code (letter, two digits, optional .digits)"
    return None


def loinc_check_digit(number: str) -> str:
    """LOINC's mod-10 check digit (the Luhn variant LOINC documents)."""
    digits = [int(d) for d in number]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 0:
            doubled = digit * 2
            total += doubled // 10 + doubled % 10
        else:
            total += digit
    return str((10 - total % 10) % 10)


def validate_loinc(code: str) -> str | None:
    match = LOINC_RE.match(code) if isinstance(code, str) else None
    if not match:
        return f"'{code}' is not a LOINC code (digits, hyphen, check digit)"
    if loinc_check_digit(match.group(1)) != match.group(2):
        return f"'{code}' has a wrong LOINC check digit"
    return None


def birth_date_from_id(value: str) -> date:
    return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def gender_from_id(value: str) -> str:
    return "MALE" if int(value[16]) % 2 == 1 else "FEMALE"
