"""Enums of the mutation inputs and of consents."""

from __future__ import annotations

from enum import Enum

import strawberry

from security.consent import ConsentStatus as StoredConsentStatus
from security.consent import DataClass as StoredDataClass
from security.identity.roles import Purpose


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


@strawberry.enum(name="ConsentStatus", description="Where a consent stands now.")
class ConsentStatusEnum(Enum):
    PENDING = strawberry.enum_value("PENDING", description="Its period has not begun.")
    ACTIVE = strawberry.enum_value("ACTIVE", description="In force.")
    EXPIRED = strawberry.enum_value("EXPIRED", description="Its period has ended.")
    REVOKED = strawberry.enum_value("REVOKED", description="Revoked by the patient (已撤回).")


# The API's enums mirror the ones security decides with; they must never drift apart.
for _api, _stored in (
    (DataClassEnum, StoredDataClass),
    (PurposeOfUse, Purpose),
    (ConsentStatusEnum, StoredConsentStatus),
):
    assert {m.value for m in _api} == {m.value for m in _stored}, _api


@strawberry.enum(description="What a bill item is: a drug, a service, or a delivery fee (配送费).")
class SettlementItemKind(Enum):
    DRUG = "DRUG"
    SERVICE = "SERVICE"
    DELIVERY = "DELIVERY"
