"""Enums for every code list the API exposes."""

from __future__ import annotations

from enum import Enum

import strawberry

from connectors.domain.codes import FILING_CATEGORIES, FILING_CHANNELS
from security.identity.roles import Purpose


@strawberry.enum(description="Gender (性别), from the national ID number.")
class Gender(Enum):
    MALE = "MALE"
    FEMALE = "FEMALE"


@strawberry.enum(description="Insurance type (险种): 职工医保 or 城乡居民医保.")
class InsuranceType(Enum):
    EMPLOYEE = "EMPLOYEE"
    RESIDENT = "RESIDENT"


@strawberry.enum(description="Status of an enrollment period (参保状态).")
class EnrollmentStatus(Enum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    ENDED = "ENDED"


@strawberry.enum(description="Kind of visit or medical type (医疗类别).")
class VisitType(Enum):
    OUTPATIENT = "OUTPATIENT"
    INPATIENT = "INPATIENT"
    INTERNET_REVISIT = "INTERNET_REVISIT"
    CHRONIC_OUTPATIENT = "CHRONIC_OUTPATIENT"
    PHARMACY = "PHARMACY"


@strawberry.enum(description="Pharmacist review of an e-prescription (药师审方).")
class ReviewStatus(Enum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PENDING = "PENDING"


@strawberry.enum(
    description="Where an e-prescription is in the circulation workflow (处方流转); "
    "see docs/prescriptions.md for the state machine."
)
class PrescriptionState(Enum):
    PENDING_REVIEW = "PENDING_REVIEW"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    DISPENSED = "DISPENSED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


@strawberry.enum(
    description="An original record against the records log (上链存证): VERIFIED (anchored and "
    "unchanged at its source), CHANGED (anchored, but its source now holds something else), "
    "UNANCHORED (never anchored). See docs/prescriptions.md."
)
class RecordIntegrity(Enum):
    VERIFIED = "VERIFIED"
    CHANGED = "CHANGED"
    UNANCHORED = "UNANCHORED"


@strawberry.enum(description="Lab test (检验) or imaging examination (检查).")
class TestCategory(Enum):
    LAB = "LAB"
    IMAGING = "IMAGING"


@strawberry.enum(description="Abnormal flag of a lab value against its reference range.")
class ResultFlag(Enum):
    N = "N"
    H = "H"
    L = "L"


@strawberry.enum(description="Imaging modality (DICOM code).")
class Modality(Enum):
    CT = "CT"
    MR = "MR"
    DR = "DR"
    US = "US"


@strawberry.enum(description="Why a result is or is not mutually recognised (互认).")
class RecognitionReason(Enum):
    RECOGNIZED = "RECOGNIZED"
    NOT_IN_CATALOGUE = "NOT_IN_CATALOGUE"
    INSTITUTION_LEVEL_TOO_LOW = "INSTITUTION_LEVEL_TOO_LOW"
    EXPIRED = "EXPIRED"
    INSTITUTION_UNKNOWN = "INSTITUTION_UNKNOWN"


@strawberry.enum(description="Status of a cross-region filing (备案状态).")
class FilingStatus(Enum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


@strawberry.enum(description="Category of a cross-region filing (备案类别).")
class FilingCategory(Enum):
    RELOCATED_RETIREE = strawberry.enum_value(
        "RELOCATED_RETIREE", description="Retiree resettled in another region (异地安置退休)."
    )
    LONG_TERM_RESIDENT = strawberry.enum_value(
        "LONG_TERM_RESIDENT", description="Long-term resident elsewhere (异地长期居住)."
    )
    REFERRAL = strawberry.enum_value(
        "REFERRAL",
        description="Referred by a hospital for treatment elsewhere (转诊转院). At most one year.",
    )
    TEMPORARY = strawberry.enum_value(
        "TEMPORARY", description="Temporary stay elsewhere (临时外出就医). At most one year."
    )
    EMERGENCY = strawberry.enum_value(
        "EMERGENCY", description="Emergency care elsewhere (急诊抢救). At most one year."
    )


@strawberry.enum(description="Where a filing was made (备案渠道).")
class FilingChannel(Enum):
    APP = strawberry.enum_value("APP", description="The national medical-insurance app.")
    MINI_PROGRAM = strawberry.enum_value("MINI_PROGRAM", description="A mini program (小程序).")
    PHONE = strawberry.enum_value("PHONE", description="By telephone.")
    COUNTER = strawberry.enum_value("COUNTER", description="At an agency counter (窗口).")
    WEB = strawberry.enum_value("WEB", description="The agency's website.")


# The API's filing enums are the platform's one vocabulary; they must never drift apart.
for _api, _vocabulary in ((FilingCategory, FILING_CATEGORIES), (FilingChannel, FILING_CHANNELS)):
    assert [m.value for m in _api] == list(_vocabulary), _api


@strawberry.enum(description="Clearing state of a settlement between regions (清算状态).")
class ClearingStatus(Enum):
    PENDING = "PENDING"
    CLEARED = "CLEARED"


@strawberry.enum(description="Hospital level (医院等级).")
class InstitutionLevel(Enum):
    TERTIARY = "TERTIARY"
    SECONDARY = "SECONDARY"
    PRIMARY = "PRIMARY"
    NONE = "NONE"


@strawberry.enum(description="Kind of designated institution (定点机构类型).")
class InstitutionKind(Enum):
    HOSPITAL = "HOSPITAL"
    PHARMACY = "PHARMACY"


def enum_or_none(cls: type[Enum], value: str | None) -> Enum | None:
    """A stored code as its enum; an unknown stored code is None rather than a crash."""
    if value is None:
        return None
    try:
        return cls(value)
    except ValueError:
        return None


@strawberry.enum(description="What an audit event records (事件类型).")
class AuditKind(Enum):
    QUERY = strawberry.enum_value("QUERY", description="A query that read personal data.")
    MUTATION = strawberry.enum_value(
        "MUTATION", description="A mutation, or a write's intent or outcome."
    )
    AUTHENTICATION = strawberry.enum_value(
        "AUTHENTICATION", description="A refused sign-in (bad, expired or untrusted token)."
    )
    PRIVACY_SPEND = strawberry.enum_value(
        "PRIVACY_SPEND", description="Epsilon charged to a partner's privacy budget."
    )
    EXTRACT = strawberry.enum_value(
        "EXTRACT", description="A de-identified extract requested, decided or written."
    )
    SUPERVISION = strawberry.enum_value("SUPERVISION", description="A claims scan run.")
    ALERT = strawberry.enum_value(
        "ALERT", description="An alert's or a warning's state, owner or note changed."
    )


@strawberry.enum(description="How an audited request ended (结果).")
class AuditOutcome(Enum):
    OK = strawberry.enum_value("OK", description="Answered in full.")
    PARTIAL = strawberry.enum_value(
        "PARTIAL", description="Some fields denied or some sources failed; the rest answered."
    )
    DENIED = strawberry.enum_value(
        "DENIED", description="Nothing personal answered and something refused."
    )
    ERROR = strawberry.enum_value("ERROR", description="Failed (not the policy's doing).")
    UNAUTHENTICATED = strawberry.enum_value("UNAUTHENTICATED", description="No valid token.")
    INTENT = strawberry.enum_value(
        "INTENT", description="A write about to reach its source (its outcome follows)."
    )
    APPLIED = strawberry.enum_value("APPLIED", description="A write's outcome: it landed.")
    NOT_APPLIED = strawberry.enum_value(
        "NOT_APPLIED", description="A write's outcome: nothing was written."
    )


@strawberry.enum(
    name="PurposeOfUse",
    description="Why data is read (使用目的), as in the X-Purpose-Of-Use header.",
)
class PurposeOfUse(Enum):
    TREATMENT = strawberry.enum_value("TREATMENT", description="Treatment (诊疗).")
    SETTLEMENT = strawberry.enum_value("SETTLEMENT", description="Settlement (结算).")
    FUND_SUPERVISION = strawberry.enum_value(
        "FUND_SUPERVISION", description="Fund supervision (基金监管)."
    )
    PATIENT_ACCESS = strawberry.enum_value(
        "PATIENT_ACCESS", description="The patient's own access (本人查询)."
    )
    RESEARCH = strawberry.enum_value("RESEARCH", description="Research (科研).")
    UNDERWRITING = strawberry.enum_value(
        "UNDERWRITING", description="Commercial underwriting (商保核保)."
    )
    AUDIT = strawberry.enum_value("AUDIT", description="Audit (审计).")
    EMERGENCY = strawberry.enum_value(
        "EMERGENCY", description="Break-glass emergency access (紧急访问)."
    )


assert {m.value for m in PurposeOfUse} == {m.value for m in Purpose}  # the policy's purposes
