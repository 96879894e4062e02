"""Lab (检验) and imaging (检查) results shared between hospitals, with mutual recognition."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema import anchoring
from schema.enums import (
    Modality,
    RecognitionReason,
    RecordIntegrity,
    ResultFlag,
    TestCategory,
    enum_or_none,
)
from schema.projection import F, Projection, col, enc
from schema.types.common import Row, field
from schema.types.institution import Institution, institution_of


@strawberry.type(description="Reference range of a lab value (参考范围).")
class ReferenceRange:
    low: float | None = strawberry.field(description="Lower limit, in the value's unit.")
    high: float | None = strawberry.field(description="Upper limit, in the value's unit.")


@strawberry.type(
    description="Whether other designated institutions accept this result "
    "without repeating it (检查检验结果互认)."
)
class Recognition:
    recognized: bool = strawberry.field(description="Accepted by other institutions now.")
    reason: RecognitionReason = strawberry.field(description="Why, or why not.")
    valid_until: datetime | None = strawberry.field(
        description="End of the item's recognition window; null when not in the catalogue."
    )


@strawberry.type(description="A lab or imaging result from a hospital's LIS or PACS.")
class TestResult:
    __test__ = False  # not a pytest class
    result_id: strawberry.ID | None = field("Result identifier at the performing hospital.")
    person_id: strawberry.ID | None = field("The person's pseudonymous identifier.")
    category: TestCategory | None = field("LAB (检验) or IMAGING (检查).")
    item_code: str | None = field("LOINC code for lab items; modality for imaging.")
    item_name: str | None = field("Item name (项目名称).")
    value: float | None = field("Lab value.")
    unit: str | None = field("Unit of the lab value (UCUM).")
    reference_range: ReferenceRange | None = field("Reference range of the lab value.")
    flag: ResultFlag | None = field("Abnormal flag: N normal, H high, L low.")
    modality: Modality | None = field("Imaging modality.")
    body_part: str | None = field("Body part examined (检查部位).")
    findings: str | None = field("Imaging findings (影像所见).")
    impression: str | None = field("Imaging impression (诊断意见).")
    study_uid: str | None = field("DICOM Study Instance UID, for fetching the images.")
    performing_institution_code: str | None = field("Hospital that performed the test.")
    visit_id: strawberry.ID | None = field("Visit it was ordered in, if known.")
    ordering_doctor: str | None = field("Ordering doctor's national code.")
    collected_at: datetime | None = field("Specimen collection or examination time.")
    reported_at: datetime | None = field("Report time.")
    _row: strawberry.Private[Row] = None
    _ref: strawberry.Private[str] = None

    @strawberry.field(
        description="Whether this original record, as its source holds it now, is the one "
        "anchored in the records log: VERIFIED, CHANGED or UNANCHORED."
    )
    async def integrity(self, info: strawberry.Info) -> RecordIntegrity | None:
        info.context.check("TestResult", "integrity", self._ref, self._row)
        return await anchoring.integrity(info, "test_results", self._row)

    @strawberry.field(description="The hospital that performed the test.")
    async def performing_institution(self, info: strawberry.Info) -> Institution | None:
        info.context.check("TestResult", "performingInstitution", self._ref, self._row)
        return await institution_of(info, self._row["institution_code"])

    @strawberry.field(description="Mutual-recognition status under the configured catalogue.")
    async def recognition(self, info: strawberry.Info) -> Recognition | None:
        ctx = info.context
        ctx.check("TestResult", "recognition", self._ref, self._row)
        row = self._row
        institution = await ctx.load(ctx.loaders.institutions, row["institution_code"], info)
        code = row["modality"] if row["category"] == "IMAGING" else row["item_code"]
        verdict = ctx.services.recognition.assess(
            code, institution["level"] if institution else None, row["reported_at"], ctx.now
        )
        return Recognition(
            recognized=verdict.recognized,
            reason=RecognitionReason(verdict.reason),
            valid_until=verdict.valid_until,
        )


def _range(_ctx, row: Row) -> ReferenceRange | None:
    if row["ref_low"] is None and row["ref_high"] is None:
        return None
    return ReferenceRange(low=row["ref_low"], high=row["ref_high"])


TEST_RESULT = Projection(
    "TestResult",
    TestResult,
    [
        F("resultId", "result_id", col("result_id"), personal=False),
        F("personId", "person_id", col("person_ref")),
        F("category", "category", col("category", lambda v: enum_or_none(TestCategory, v))),
        F("itemCode", "item_code", col("item_code")),
        F("itemName", "item_name", col("item_name")),
        F("value", "value", col("value")),
        F("unit", "unit", col("unit")),
        F("referenceRange", "reference_range", _range),
        F("flag", "flag", col("flag", lambda v: enum_or_none(ResultFlag, v))),
        F("modality", "modality", col("modality", lambda v: enum_or_none(Modality, v))),
        F("bodyPart", "body_part", col("body_part")),
        F("findings", "findings", enc("test_results", "findings_enc", "result_id")),
        F("impression", "impression", enc("test_results", "impression_enc", "result_id")),
        F("studyUid", "study_uid", col("study_uid")),
        F("performingInstitutionCode", "performing_institution_code", col("institution_code")),
        F("visitId", "visit_id", col("mdtrt_id")),
        F("orderingDoctor", "ordering_doctor", col("ordering_doctor")),
        F("collectedAt", "collected_at", col("collected_at")),
        F("reportedAt", "reported_at", col("reported_at")),
    ],
    lambda row: row["person_ref"],
)
