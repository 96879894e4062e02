"""The classes of personal data a patient can consent to share (数据类别).

They name the catalogue classes of clinical and insurance data; the policy engine checks a
field's class against a consent's classes, so the two must use these same names.
"""

from __future__ import annotations

from enum import StrEnum


class DataClass(StrEnum):
    IDENTITY = "IDENTITY"  # 身份信息
    CONTACT = "CONTACT"  # 联系方式
    ENROLLMENT = "ENROLLMENT"  # 参保信息
    VISIT = "VISIT"  # 就诊记录
    DIAGNOSIS = "DIAGNOSIS"  # 诊断
    PRESCRIPTION = "PRESCRIPTION"  # 处方
    LAB_RESULT = "LAB_RESULT"  # 检验结果
    IMAGING = "IMAGING"  # 检查（影像）结果
    SETTLEMENT = "SETTLEMENT"  # 结算
    FILING = "FILING"  # 异地就医备案


class ConsentStatus(StrEnum):
    """Where a consent stands at a given moment."""

    PENDING = "PENDING"  # its period has not begun
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
