"""Enums for every code list the API exposes."""

from __future__ import annotations

from enum import Enum

import strawberry


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
