"""The patient's basis of identity: the national medical-insurance e-credential (医保电子凭证).

A patient token says which credential the person presented (``mdtrt_cert_type``, the national
platform's certificate types) and how strongly the identity provider checked that the person
is who the credential names (``acr``, an assurance level). The field policy can require a
minimum assurance per data level (``[[assurance]]`` in ``security/policy.toml``).
"""

from __future__ import annotations

from enum import StrEnum


class CertType(StrEnum):
    """``mdtrt_cert_type``: the credential presented (就诊凭证类型)."""

    E_CREDENTIAL = "01"  # 医保电子凭证, the national medical-insurance e-credential
    ID_CARD = "02"  # 居民身份证
    SOCIAL_SECURITY_CARD = "03"  # 社会保障卡


class Assurance(StrEnum):
    """``acr``: how the identity provider established the person, weakest first."""

    CREDENTIAL = "credential"  # the credential alone (the app's login, a card read)
    REAL_NAME = "real_name"  # 实名: the credential matched to the citizen ID record
    REAL_PERSON = "real_person"  # 实人: live face recognition against the ID photo


ORDER: tuple[Assurance, ...] = tuple(Assurance)


def rank(level: str | None) -> int:
    """Position in :data:`ORDER` (higher is stronger); -1 for no or an unknown level, which
    meets no requirement."""
    try:
        return ORDER.index(Assurance(level)) if level is not None else -1
    except ValueError:
        return -1
