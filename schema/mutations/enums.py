"""Enums of the mutation inputs and of consents (the filing enums live in schema.enums, as
the Filing type answers them too)."""

from __future__ import annotations

from enum import Enum

import strawberry

from schema.enums import PurposeOfUse
from security.consent import ConsentStatus as StoredConsentStatus
from security.consent import DataClass as StoredDataClass


@strawberry.enum(
    name="DataClass", description="A class of personal data a consent can cover (数据类别)."
)
class DataClassEnum(Enum):
    IDENTITY = strawberry.enum_value("IDENTITY", description="Identity (身份信息).")
    CONTACT = strawberry.enum_value("CONTACT", description="Contact details (联系方式).")
    ENROLLMENT = strawberry.enum_value("ENROLLMENT", description="Enrollment (参保信息).")
    VISIT = strawberry.enum_value("VISIT", description="Visits (就诊记录).")
    DIAGNOSIS = strawberry.enum_value("DIAGNOSIS", description="Diagnoses (诊断).")
    PRESCRIPTION = strawberry.enum_value("PRESCRIPTION", description="Prescriptions (处方).")
    LAB_RESULT = strawberry.enum_value("LAB_RESULT", description="Lab results (检验结果).")
    IMAGING = strawberry.enum_value("IMAGING", description="Imaging results (检查结果).")
    SETTLEMENT = strawberry.enum_value("SETTLEMENT", description="Settlements (结算).")
    FILING = strawberry.enum_value("FILING", description="Cross-region filings (异地就医备案).")


@strawberry.enum(name="ConsentStatus", description="Where a consent stands now.")
class ConsentStatusEnum(Enum):
    PENDING = strawberry.enum_value("PENDING", description="Its period has not begun.")
    ACTIVE = strawberry.enum_value("ACTIVE", description="In force.")
    EXPIRED = strawberry.enum_value("EXPIRED", description="Its period has ended.")
    REVOKED = strawberry.enum_value("REVOKED", description="Revoked by the patient (已撤回).")


# The API's enums mirror the ones security decides with; they must never drift apart.
for _api, _stored in (
    (DataClassEnum, StoredDataClass),
    (ConsentStatusEnum, StoredConsentStatus),
):
    assert {m.value for m in _api} == {m.value for m in _stored}, _api

__all__ = ["ConsentStatusEnum", "DataClassEnum", "PurposeOfUse", "SettlementItemKind"]


@strawberry.enum(description="What a bill item is: a drug, a service, or a delivery fee (配送费).")
class SettlementItemKind(Enum):
    DRUG = "DRUG"
    SERVICE = "SERVICE"
    DELIVERY = "DELIVERY"
