"""The canonical roles and purposes of use. Every other package names them through these
enums, so a role or purpose that is not listed here cannot appear anywhere in the product."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    """Who the caller is, as asserted by a trusted issuer (the token's ``role`` claim)."""

    PATIENT = "patient"  # 参保人
    CLINICIAN = "clinician"  # 医师
    PHARMACIST = "pharmacist"  # 药师
    INSURANCE_AGENCY = "insurance_agency"  # 医保经办机构
    SETTLEMENT_CENTER = "settlement_center"  # 结算中心
    RESEARCHER = "researcher"  # 研究人员
    COMMERCIAL_INSURER = "commercial_insurer"  # 商业保险公司
    AUDITOR = "auditor"  # 审计人员
    ADMIN = "admin"  # 系统管理员
    # 运维: reads the gateway's own metrics (/metrics), never data. Its tokens carry no
    # purpose of use, so every data route refuses them at the door.
    OPERATIONS = "operations"


class Purpose(StrEnum):
    """Why a request reads data (the ``X-Purpose-Of-Use`` header); a token lists the ones
    its holder may use."""

    TREATMENT = "TREATMENT"  # 诊疗
    SETTLEMENT = "SETTLEMENT"  # 结算
    FUND_SUPERVISION = "FUND_SUPERVISION"  # 基金监管
    PATIENT_ACCESS = "PATIENT_ACCESS"  # 本人查询
    RESEARCH = "RESEARCH"  # 科研
    UNDERWRITING = "UNDERWRITING"  # 商保核保
    AUDIT = "AUDIT"  # 审计
    EMERGENCY = "EMERGENCY"  # 紧急访问 (break-glass)


# A patient acts only for themself; any other purpose in a patient token is refused.
PATIENT_PURPOSES: frozenset[Purpose] = frozenset({Purpose.PATIENT_ACCESS})

# What `medfed token` grants when no --purposes is given: the everyday purpose of each role.
# Break-glass (EMERGENCY) is never a default; it must be asked for explicitly.
DEFAULT_PURPOSES: Mapping[Role, frozenset[Purpose]] = MappingProxyType(
    {
        Role.PATIENT: PATIENT_PURPOSES,
        Role.CLINICIAN: frozenset({Purpose.TREATMENT}),
        Role.PHARMACIST: frozenset({Purpose.TREATMENT}),
        Role.INSURANCE_AGENCY: frozenset({Purpose.SETTLEMENT, Purpose.FUND_SUPERVISION}),
        Role.SETTLEMENT_CENTER: frozenset({Purpose.SETTLEMENT}),
        Role.RESEARCHER: frozenset({Purpose.RESEARCH}),
        Role.COMMERCIAL_INSURER: frozenset({Purpose.UNDERWRITING}),
        Role.AUDITOR: frozenset({Purpose.AUDIT}),
        Role.ADMIN: frozenset({Purpose.AUDIT}),
        Role.OPERATIONS: frozenset(),
    }
)

# Roles that read no data and so have no purpose of use: their tokens must name none.
NO_PURPOSE_ROLES: frozenset[Role] = frozenset({Role.OPERATIONS})
