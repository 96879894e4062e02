"""The insurance record: enrollments, visits, prescriptions, drug purchases, settlements."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry

from connectors.domain.prescriptions import prescription_document
from schema import anchoring, signing
from schema.enums import (
    ClearingStatus,
    EnrollmentStatus,
    InsuranceType,
    PrescriptionState,
    RecordIntegrity,
    ReviewStatus,
    VisitType,
    enum_or_none,
)
from schema.projection import F, Projection, col, enc
from schema.selection import requested
from schema.types.common import Row, field, yuan
from schema.types.institution import Institution, institution_of


def _ref(row: Row) -> str:
    return row["person_ref"]


def _optional(column: str, convert: Any = None) -> Any:
    """A column only some sources' rows have (None on the others')."""

    def read(_ctx: Any, row: Row) -> Any:
        value = row.get(column)
        return value if value is None or convert is None else convert(value)

    return read


async def _gated_items(
    info: strawberry.Info, type_name: str, parent: Any, loader: str, key_column: str
) -> list[Row]:
    """The item rows of a prescription or purchase, in item order, once the parent's ``items``
    field passes the policy; items come from the same source as their parent."""
    ctx = info.context
    ctx.check(type_name, "items", parent._ref, parent._row)
    rows = await ctx.load(
        getattr(ctx.loaders, loader), (parent._row["_source"], parent._row[key_column]), info
    )
    return sorted(rows, key=lambda r: r["item_id"])


# -- enrollment -------------------------------------------------------------------------------
@strawberry.type(description="A period of insurance in one pooling region (参保记录).")
class Enrollment:
    enrollment_id: strawberry.ID | None = field("Identifier of the enrollment at its bureau.")
    insurance_type: InsuranceType | None = field("职工医保 (EMPLOYEE) or 城乡居民医保 (RESIDENT).")
    pooling_region: str | None = field("Pooling region (统筹区), GB/T 2260 code.")
    begin_date: date | None = field("First day insured.")
    end_date: date | None = field("Last day insured; null while active.")
    status: EnrollmentStatus | None = field("Enrollment status.")
    account_balance: Decimal | None = field("Personal account balance in yuan (个人账户余额).")
    _row: strawberry.Private[Row] = None
    _ref: strawberry.Private[str] = None


ENROLLMENT = Projection(
    "Enrollment",
    Enrollment,
    [
        F("enrollmentId", "enrollment_id", col("enrollment_id"), personal=False),
        F(
            "insuranceType",
            "insurance_type",
            col("insutype", lambda v: enum_or_none(InsuranceType, v)),
        ),
        F("poolingRegion", "pooling_region", col("pool_admdvs")),
        F("beginDate", "begin_date", col("begin_date")),
        F("endDate", "end_date", col("end_date")),
        F("status", "status", col("status", lambda v: enum_or_none(EnrollmentStatus, v))),
        F("accountBalance", "account_balance", col("account_balance_fen", yuan)),
    ],
    _ref,
)


# -- prescription -----------------------------------------------------------------------------
@strawberry.type(description="One drug on an e-prescription (处方明细).")
class PrescriptionItem:
    drug_code: str = strawberry.field(description="National medical-insurance drug code.")
    drug_name: str = strawberry.field(description="Drug name (药品名称).")
    quantity: int = strawberry.field(description="Quantity dispensed, in `unit`.")
    unit: str = strawberry.field(description="Packaging unit.")
    dosage: str = strawberry.field(description="Dosage instructions (用法用量).")
    days: int = strawberry.field(description="Days of supply.")


@strawberry.type(
    description="An e-prescription (电子处方): signed by the doctor, reviewed by "
    "a pharmacist before it takes effect, optionally circulated "
    "(处方流转) to a designated pharmacy."
)
class Prescription:
    prescription_id: strawberry.ID | None = field("Prescription identifier.")
    visit_id: strawberry.ID | None = field("The visit it was written in.")
    institution_code: str | None = field("Prescribing institution.")
    doctor_code: str | None = field("National doctor code of the prescriber.")
    doctor_signature: str | None = field("The doctor's e-signature (电子签名), base64.")
    issued_at: datetime | None = field("When it was issued.")
    review_status: ReviewStatus | None = field("Pharmacist review result (审方结果).")
    reviewed_by: str | None = field("Reviewing pharmacist's code.")
    reviewed_at: datetime | None = field("When it was reviewed.")
    circulated_to: str | None = field("Pharmacy code it was circulated to, if any.")
    status: PrescriptionState | None = field(
        "Where it is in the circulation workflow (the prescribing hospital's record; null on "
        "a bureau's copy, which has no workflow)."
    )
    expires_at: datetime | None = field(
        "Not dispensed after this (the prescribing hospital's record; null on a bureau's copy)."
    )
    _row: strawberry.Private[Row] = None
    _ref: strawberry.Private[str] = None

    @strawberry.field(
        description="Whether `doctorSignature` is a registered key's signature over this "
        "prescription's canonical form (docs/prescriptions.md), checked now against the "
        "prescription as its source holds it: false for a changed record or a signature of "
        "no registered key."
    )
    async def signature_valid(self, info: strawberry.Info) -> bool | None:
        ctx = info.context
        ctx.check("Prescription", "signatureValid", self._ref, self._row)
        loader = "e_rx_items" if "expires_at" in self._row else "rx_items"
        items = await ctx.load(
            getattr(ctx.loaders, loader), (self._row["_source"], self._row["rx_id"]), info
        )
        document = prescription_document(self._row, items)
        return signing.keys(ctx).verify(self._row["doctor_signature"], document).valid

    @strawberry.field(
        description="Whether this original record, as its source holds it now, is the one "
        "anchored in the records log: VERIFIED, CHANGED or UNANCHORED."
    )
    async def integrity(self, info: strawberry.Info) -> RecordIntegrity | None:
        info.context.check("Prescription", "integrity", self._ref, self._row)
        if "expires_at" not in self._row:  # a bureau's copy: the original is at the hospital
            return RecordIntegrity.UNANCHORED
        items = await info.context.load(
            info.context.loaders.e_rx_items, (self._row["_source"], self._row["rx_id"]), info
        )
        return await anchoring.integrity(info, "e_prescriptions", self._row, items)

    @strawberry.field(
        description="The drug purchases (购药) that dispensed this prescription, oldest first: "
        "each shown only where the caller may see that purchase."
    )
    async def purchases(self, info: strawberry.Info) -> list[DrugPurchase]:
        ctx = info.context
        # The person's purchases (the loader cloudRecord.drugPurchases shares), each through
        # the enforcement point as its own row: the link opens nothing the list would not.
        rows = await ctx.load(ctx.loaders.dispensings, self._ref, info)
        rows = [r for r in rows if r["rx_id"] == self._row["rx_id"]]
        await ctx.prepare_relations([self._ref])
        rows = DRUG_PURCHASE.keep_visible(ctx, rows)
        rows.sort(key=lambda r: (r["dispensed_at"], r["dispensing_id"]))
        return DRUG_PURCHASE.build_all(ctx, rows, requested(info))

    @strawberry.field(description="The drugs prescribed (at most five by national rules).")
    async def items(self, info: strawberry.Info) -> list[PrescriptionItem] | None:
        # The hospital's original (e_prescriptions) keeps its items beside it; a bureau's
        # copy beside the copy.
        loader = "e_rx_items" if "expires_at" in self._row else "rx_items"
        rows = await _gated_items(info, "Prescription", self, loader, "rx_id")
        return [
            PrescriptionItem(
                drug_code=r["drug_code"],
                drug_name=r["drug_name"],
                quantity=r["quantity"],
                unit=r["unit"],
                dosage=r["dosage"],
                days=r["days"],
            )
            for r in rows
        ]


PRESCRIPTION = Projection(
    "Prescription",
    Prescription,
    [
        F("prescriptionId", "prescription_id", col("rx_id"), personal=False),
        F("visitId", "visit_id", col("mdtrt_id"), personal=False),
        F("institutionCode", "institution_code", col("institution_code")),
        F("doctorCode", "doctor_code", col("doctor_code")),
        F("doctorSignature", "doctor_signature", col("doctor_signature")),
        F("issuedAt", "issued_at", col("issued_at")),
        F(
            "reviewStatus",
            "review_status",
            col("review_status", lambda v: enum_or_none(ReviewStatus, v)),
        ),
        F("reviewedBy", "reviewed_by", col("reviewed_by")),
        F("reviewedAt", "reviewed_at", col("reviewed_at")),
        F("circulatedTo", "circulated_to", col("circulated_to")),
        F("status", "status", _optional("status", lambda v: enum_or_none(PrescriptionState, v))),
        F("expiresAt", "expires_at", _optional("expires_at")),
    ],
    _ref,
)


# -- visit ------------------------------------------------------------------------------------
@strawberry.type(
    description="A visit (就诊): outpatient, inpatient, internet revisit, chronic "
    "outpatient or pharmacy, at a designated institution."
)
class Visit:
    visit_id: strawberry.ID | None = field("Visit identifier (mdtrt_id).")
    institution_code: str | None = field("Treating institution's code.")
    visit_type: VisitType | None = field("Medical type (医疗类别).")
    begin_date: date | None = field("Admission or visit date.")
    end_date: date | None = field("Discharge date for inpatient stays.")
    diagnosis_codes: list[str] | None = field("ICD-10 diagnosis codes (诊断编码).")
    diagnosis_text: str | None = field("Diagnosis as written by the doctor (诊断描述).")
    doctor_code: str | None = field("National doctor code.")
    insured_region: str | None = field("Insured place (参保地, insuplc_admdvs).")
    treatment_region: str | None = field("Treatment place (就医地, mdtrtarea_admvs).")
    cross_region: bool | None = field("Whether care was outside the insured region (异地就医).")
    _row: strawberry.Private[Row] = None
    _ref: strawberry.Private[str] = None

    @strawberry.field(description="The treating institution.")
    async def institution(self, info: strawberry.Info) -> Institution | None:
        info.context.check(type(self).__name__, "institution", self._ref, self._row)
        return await institution_of(info, self._row["institution_code"])

    @strawberry.field(description="E-prescriptions written in this visit.")
    async def prescriptions(self, info: strawberry.Info) -> list[Prescription]:
        ctx = info.context
        rows = await ctx.load(
            ctx.loaders.prescriptions_by_visit, (self._row["_source"], self._row["mdtrt_id"]), info
        )
        await ctx.prepare_relations([self._ref])
        rows = PRESCRIPTION.keep_visible(ctx, rows)
        rows.sort(key=lambda r: (r["issued_at"], r["rx_id"]))
        return PRESCRIPTION.build_all(ctx, rows, requested(info))

    @strawberry.field(
        description="The settlement of this visit (结算), in its province or cross-province; "
        "null while it is not settled or where the caller may not see the settlement."
    )
    async def settlement(self, info: strawberry.Info) -> Settlement | None:
        ctx = info.context
        # The person's settlements (the loaders cloudRecord.settlements shares), judged as
        # rows of their own through the enforcement point, never by the visit's admission.
        loaders = ctx.loaders
        found = await asyncio.gather(
            ctx.load(loaders.settlements, self._ref, info),
            ctx.load(loaders.cross_settlements, self._ref, info),
        )
        rows = [r for group in found for r in group if r["mdtrt_id"] == self._row["mdtrt_id"]]
        await ctx.prepare_relations([self._ref])
        rows = SETTLEMENT.keep_visible(ctx, rows)
        if not rows:
            return None
        rows.sort(key=lambda r: (r["setl_time"], r["setl_id"]))  # a visit is settled once
        return SETTLEMENT.build(ctx, rows[-1], requested(info))


VISIT = Projection(
    "Visit",
    Visit,
    [
        F("visitId", "visit_id", col("mdtrt_id"), personal=False),
        F("institutionCode", "institution_code", col("institution_code")),
        F("visitType", "visit_type", col("visit_type", lambda v: enum_or_none(VisitType, v))),
        F("beginDate", "begin_date", col("begin_date")),
        F("endDate", "end_date", col("end_date")),
        F(
            "diagnosisCodes",
            "diagnosis_codes",
            col("diagnosis_codes", lambda v: [c for c in v.split(",") if c]),
        ),
        F("diagnosisText", "diagnosis_text", enc("visits", "diagnosis_text_enc", "mdtrt_id")),
        F("doctorCode", "doctor_code", col("doctor_code")),
        F("insuredRegion", "insured_region", col("insuplc_admdvs")),
        F("treatmentRegion", "treatment_region", col("mdtrtarea_admvs")),
        F("crossRegion", "cross_region", col("cross_region", bool)),
    ],
    _ref,
)


# -- drug purchase ----------------------------------------------------------------------------
@strawberry.type(description="One drug of a purchase at a pharmacy.")
class DrugPurchaseItem:
    drug_code: str = strawberry.field(description="National medical-insurance drug code.")
    drug_name: str = strawberry.field(description="Drug name.")
    quantity: int = strawberry.field(description="Quantity, in `unit`.")
    unit: str = strawberry.field(description="Packaging unit.")
    amount: Decimal = strawberry.field(description="Amount in yuan.")


@strawberry.type(
    description="A drug purchase (购药) at a designated pharmacy, usually of a "
    "circulated prescription. Delivery fees are never paid by the "
    "fund."
)
class DrugPurchase:
    purchase_id: strawberry.ID | None = field("Purchase identifier at the pharmacy.")
    prescription_id: strawberry.ID | None = field("The circulated prescription, if any.")
    pharmacy_code: str | None = field("Pharmacy code (P + region + five digits).")
    pharmacist_code: str | None = field("Dispensing pharmacist's code.")
    purchased_at: datetime | None = field("When it was dispensed.")
    total: Decimal | None = field("Total in yuan.")
    fund_pay: Decimal | None = field("Paid by the pooled fund (统筹基金支付).")
    account_pay: Decimal | None = field("Paid from the personal account (个人账户支付).")
    cash_pay: Decimal | None = field("Paid in cash by the person (个人现金支付).")
    delivered: bool | None = field("Whether the drugs were delivered.")
    delivery_fee: Decimal | None = field("Delivery fee, paid by the person, never the fund.")
    _row: strawberry.Private[Row] = None
    _ref: strawberry.Private[str] = None

    @strawberry.field(description="The drugs bought.")
    async def items(self, info: strawberry.Info) -> list[DrugPurchaseItem] | None:
        rows = await _gated_items(info, "DrugPurchase", self, "dispensing_items", "dispensing_id")
        return [
            DrugPurchaseItem(
                drug_code=r["drug_code"],
                drug_name=r["drug_name"],
                quantity=r["quantity"],
                unit=r["unit"],
                amount=yuan(r["amount_fen"]),
            )
            for r in rows
        ]


DRUG_PURCHASE = Projection(
    "DrugPurchase",
    DrugPurchase,
    [
        F("purchaseId", "purchase_id", col("dispensing_id"), personal=False),
        F("prescriptionId", "prescription_id", col("rx_id")),
        F("pharmacyCode", "pharmacy_code", col("pharmacy_code")),
        F("pharmacistCode", "pharmacist_code", col("pharmacist_code")),
        F("purchasedAt", "purchased_at", col("dispensed_at")),
        F("total", "total", col("total_fen", yuan)),
        F("fundPay", "fund_pay", col("fund_pay_fen", yuan)),
        F("accountPay", "account_pay", col("acct_pay_fen", yuan)),
        F("cashPay", "cash_pay", col("cash_pay_fen", yuan)),
        F("delivered", "delivered", col("delivered", bool)),
        F("deliveryFee", "delivery_fee", col("delivery_fee_fen", yuan)),
    ],
    _ref,
)


# -- settlement -------------------------------------------------------------------------------
@strawberry.federation.type(
    shareable=True,  # Visit.settlement answers it in the records subgraph too, the same way
    description="A settlement (结算) of a visit: what the fund, the personal "
    "account and the person paid. `total = fundPay + accountPay + "
    "cashPay` always holds.",
)
class Settlement:
    settlement_id: strawberry.ID | None = field("Settlement identifier (setl_id).")
    visit_id: strawberry.ID | None = field("The settled visit (mdtrt_id).")
    person_id: strawberry.ID | None = field("The settled person's pseudonymous identifier.")
    institution_code: str | None = field("Treating institution.")
    medical_type: VisitType | None = field("Medical type (医疗类别).")
    settled_at: datetime | None = field("When it was settled.")
    insured_region: str | None = field("Insured place (参保地, insuplc_admdvs).")
    treatment_region: str | None = field("Treatment place (就医地, mdtrtarea_admvs).")
    total: Decimal | None = field("Total medical cost in yuan (医疗费总额).")
    in_policy: Decimal | None = field("Cost within the policy scope (符合政策范围金额).")
    fund_pay: Decimal | None = field("Paid by the pooled fund (统筹基金支付).")
    account_pay: Decimal | None = field("Paid from the personal account (个人账户支付).")
    cash_pay: Decimal | None = field("Paid in cash by the person (个人现金支付).")
    cross_province: bool | None = field("Cross-province direct settlement (跨省直接结算).")
    clearing_status: ClearingStatus | None = field("Clearing between regions (清算).")
    clearing_month: str | None = field("Month it is cleared in (YYYY-MM), cross-province only.")
    filing_id: strawberry.ID | None = field(
        "The filing (备案) it was made under, cross-province only."
    )
    _row: strawberry.Private[Row] = None
    _ref: strawberry.Private[str] = None

    @strawberry.field(
        description="Whether this original record, as its source holds it now, is the one "
        "anchored in the records log: VERIFIED, CHANGED or UNANCHORED."
    )
    async def integrity(self, info: strawberry.Info) -> RecordIntegrity | None:
        info.context.check("Settlement", "integrity", self._ref, self._row)
        kind = "cross_settlements" if "filing_id" in self._row else "settlements"
        return await anchoring.integrity(info, kind, self._row)

    @strawberry.field(description="The treating institution.")
    async def institution(self, info: strawberry.Info) -> Institution | None:
        info.context.check(type(self).__name__, "institution", self._ref, self._row)
        return await institution_of(info, self._row["institution_code"])


def _opt(column: str, convert=None):
    """A column only some settlement sources have (platform rows carry clearing data)."""

    def read(_ctx, row: Row):
        value = row.get(column)
        return value if value is None or convert is None else convert(value)

    return read


SETTLEMENT = Projection(
    "Settlement",
    Settlement,
    [
        F("settlementId", "settlement_id", col("setl_id"), personal=False),
        F("visitId", "visit_id", col("mdtrt_id")),
        F("personId", "person_id", col("person_ref")),
        F("institutionCode", "institution_code", col("institution_code")),
        F("medicalType", "medical_type", col("med_type", lambda v: enum_or_none(VisitType, v))),
        F("settledAt", "settled_at", col("setl_time")),
        F("insuredRegion", "insured_region", col("insuplc_admdvs")),
        F("treatmentRegion", "treatment_region", col("mdtrtarea_admvs")),
        F("total", "total", col("total_fen", yuan)),
        F("inPolicy", "in_policy", col("in_policy_fen", yuan)),
        F("fundPay", "fund_pay", col("fund_pay_fen", yuan)),
        F("accountPay", "account_pay", col("acct_pay_fen", yuan)),
        F("cashPay", "cash_pay", col("cash_pay_fen", yuan)),
        F(
            "crossProvince",
            "cross_province",
            lambda _c, r: bool(r.get("cross_province", "clearing_month" in r)),
        ),
        F(
            "clearingStatus",
            "clearing_status",
            col("clearing_status", lambda v: enum_or_none(ClearingStatus, v)),
        ),
        F("clearingMonth", "clearing_month", _opt("clearing_month")),
        F("filingId", "filing_id", _opt("filing_id")),
    ],
    _ref,
)
