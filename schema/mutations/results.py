"""publishTestResult: a hospital publishes a lab (检验) or imaging (检查) result to its own
result system, where every other hospital can then read it for mutual recognition."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime
from typing import Annotated, Any

import strawberry

from connectors.domain import codes
from connectors.registry import Source
from connectors.sql import writers
from connectors.sql.models import hospital
from schema import anchoring
from schema.enums import Modality, ResultFlag, TestCategory
from schema.errors import forbidden
from schema.mutations import lookups
from schema.mutations import validation as v
from schema.mutations.idempotent import Created, IdempotentCall, Target
from schema.relations import treating_since
from schema.selection import requested
from schema.types.results import TEST_RESULT, TestResult
from security.identity.roles import Role

OPERATION = "publishTestResult"
RESULTS = hospital.TestResult.__table__
DOCTOR_RE = re.compile(r"^D[0-9A-Z]{8,15}$")
# DICOM UIDs are OIDs: numeric components without leading zeros, at most 64 characters.
DICOM_UID_RE = re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$")


@strawberry.input(
    description="Reference range (参考范围) of a lab value, in the value's unit. "
    "Either limit may be left out."
)
class ReferenceRangeInput:
    low: float | None = strawberry.field(default=None, description="Lower limit.")
    high: float | None = strawberry.field(default=None, description="Upper limit; at least `low`.")


@strawberry.input(
    description="A lab or imaging result to publish. Give the person by exactly "
    "one of `personId` and `idNumber`. LAB results take `loincCode`, "
    "`value`, `unit`, `referenceRange` and `flag`; IMAGING results "
    "take `modality`, `bodyPart`, `findings`, `impression` and "
    "`studyUid`. Times without an offset are China Standard Time."
)
class PublishTestResultInput:
    category: TestCategory = strawberry.field(description="LAB (检验) or IMAGING (检查).")
    item_name: str = strawberry.field(description="Item name (项目名称), at most 64 characters.")
    collected_at: datetime = strawberry.field(
        description="Specimen collection or examination time; not after `reportedAt`."
    )
    reported_at: datetime = strawberry.field(description="Report time; not in the future.")
    ordering_doctor: str = strawberry.field(
        description="Ordering doctor's national code "
        "(医师代码, D followed by 8-15 digits "
        "or capital letters)."
    )
    person_id: strawberry.ID | None = strawberry.field(
        default=None, description="The person's pseudonymous personId."
    )
    id_number: str | None = strawberry.field(
        default=None,
        description="The person's national citizen ID number (身份证号), "
        "checked by its check digit.",
    )
    visit_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Required: the visit (mdtrt_id) it was ordered in, as the "
        "insurance bureau recorded it: a visit of this person at the "
        "publishing hospital within the treating window (180 days).",
    )
    loinc_code: str | None = strawberry.field(
        default=None, description="LAB: LOINC code, with check digit."
    )
    value: float | None = strawberry.field(default=None, description="LAB: the value.")
    unit: str | None = strawberry.field(
        default=None, description="LAB: UCUM unit, at most 16 characters."
    )
    reference_range: ReferenceRangeInput | None = strawberry.field(
        default=None, description="LAB: reference range (参考范围)."
    )
    flag: ResultFlag | None = strawberry.field(
        default=None,
        description="LAB: abnormal flag. Derived from the value and range when "
        "left out; checked against them when given.",
    )
    modality: Modality | None = strawberry.field(default=None, description="IMAGING: modality.")
    body_part: str | None = strawberry.field(
        default=None, description="IMAGING: body part (检查部位)."
    )
    findings: str | None = strawberry.field(
        default=None, description="IMAGING: findings (影像所见)."
    )
    impression: str | None = strawberry.field(
        default=None, description="IMAGING: impression (诊断意见)."
    )
    study_uid: str | None = strawberry.field(
        default=None, description="IMAGING: DICOM Study Instance UID (an OID)."
    )


@strawberry.type(description="What publishTestResult did.")
class PublishTestResultPayload:
    test_result: TestResult | None = strawberry.field(
        description="The published result, as `testResults` returns it."
    )
    replayed: bool = strawberry.field(
        description="True when this idempotencyKey had already "
        "published this input: nothing new was "
        "written and the first result is returned."
    )


def derived_flag(value: float, low: float | None, high: float | None) -> ResultFlag | None:
    if low is None and high is None:
        return None
    if low is not None and value < low:
        return ResultFlag.L
    if high is not None and value > high:
        return ResultFlag.H
    return ResultFlag.N


def _caller_hospital(ctx: Any) -> Source:
    principal = ctx.principal
    source = lookups.hospital_of(ctx, principal.org)
    if principal.role != Role.CLINICIAN or source is None:
        raise forbidden(
            "publishTestResult is for clinicians of a hospital that is a source of this federation"
        )
    return source


def _check_lab(p: v.Problems, i: PublishTestResultInput) -> dict[str, Any]:
    out: dict[str, Any] = {
        "item_code": None,
        "value": None,
        "unit": None,
        "ref_low": None,
        "ref_high": None,
        "flag": None,
    }
    if i.loinc_code is None:
        p.add(["input", "loincCode"], "is required for a LAB result")
    elif problem := codes.validate_loinc(i.loinc_code):
        p.add(["input", "loincCode"], problem)
    else:
        out["item_code"] = i.loinc_code
    if i.value is None or not math.isfinite(i.value):
        p.add(["input", "value"], "is required for a LAB result")
    out["value"] = i.value
    out["unit"] = v.text(p, ["input", "unit"], i.unit, 16)
    low = high = None
    if i.reference_range is not None:
        low, high = i.reference_range.low, i.reference_range.high
        if low is not None and high is not None and low > high:
            p.add(["input", "referenceRange", "high"], "must not be below `low`")
    out["ref_low"], out["ref_high"] = low, high
    derived = (
        None
        if i.value is None or p.at("input", "referenceRange", "high")
        else derived_flag(i.value, low, high)
    )
    if i.flag is not None and derived is not None and i.flag != derived:
        p.add(
            ["input", "flag"],
            f"does not agree with the value and reference range (they give {derived.value})",
        )
    flag = i.flag or derived
    out["flag"] = None if flag is None else flag.value
    for name, value in (
        ("modality", i.modality),
        ("bodyPart", i.body_part),
        ("findings", i.findings),
        ("impression", i.impression),
        ("studyUid", i.study_uid),
    ):
        v.absent(p, ["input", name], value, "for a LAB result")
    return out


def _check_imaging(p: v.Problems, i: PublishTestResultInput) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if i.modality is None:
        p.add(["input", "modality"], "is required for an IMAGING result")
    out["modality"] = None if i.modality is None else i.modality.value
    out["body_part"] = v.text(p, ["input", "bodyPart"], i.body_part, 32)
    out["findings"] = v.text(p, ["input", "findings"], i.findings, 4000)
    out["impression"] = v.text(p, ["input", "impression"], i.impression, 4000)
    uid = v.text(p, ["input", "studyUid"], i.study_uid, 64)
    if uid is not None and not DICOM_UID_RE.match(uid):
        p.add(
            ["input", "studyUid"],
            "is not a DICOM UID (dot-separated numbers without "
            "leading zeros, e.g. 1.2.156.112605.1)",
        )
        uid = None
    out["study_uid"] = uid
    for name, value in (
        ("loincCode", i.loinc_code),
        ("value", i.value),
        ("unit", i.unit),
        ("referenceRange", i.reference_range),
        ("flag", i.flag),
    ):
        v.absent(p, ["input", name], value, "for an IMAGING result")
    return out


def _check_static(p: v.Problems, i: PublishTestResultInput, now: datetime) -> dict[str, Any]:
    """Everything that can be checked without asking a source."""
    fields: dict[str, Any] = {}
    if (i.person_id is None) == (i.id_number is None):
        p.add(["input", "personId"], "give exactly one of personId and idNumber")
    elif i.person_id is not None:
        v.person_id(p, ["input", "personId"], str(i.person_id))
    elif problem := codes.validate_id_number(i.id_number or ""):
        p.add(["input", "idNumber"], problem)
    fields["item_name"] = v.text(p, ["input", "itemName"], i.item_name, 64)
    if i.category == TestCategory.LAB:
        fields |= _check_lab(p, i)
    else:
        fields |= _check_imaging(p, i)
    collected = v.not_future(p, ["input", "collectedAt"], i.collected_at, now)
    reported = v.not_future(p, ["input", "reportedAt"], i.reported_at, now)
    if collected > reported:
        p.add(["input", "collectedAt"], "must not be after reportedAt")
    fields["collected_at"], fields["reported_at"] = collected, reported
    if not DOCTOR_RE.match(i.ordering_doctor):
        p.add(
            ["input", "orderingDoctor"],
            "is not a doctor code (D followed by 8-15 digits or capital letters)",
        )
    if i.visit_id is not None:
        v.source_id(p, ["input", "visitId"], str(i.visit_id))
    return fields


def _canonical(ctx: Any, i: PublishTestResultInput) -> dict[str, Any]:
    data = strawberry.asdict(i)
    if i.id_number is not None:
        # The stored hash must not let anyone test guesses of an ID number: keep only its
        # keyed blind index.
        data["id_number"] = ctx.indexer.id_number(i.id_number)
    data["collected_at"] = v.beijing(i.collected_at)
    data["reported_at"] = v.beijing(i.reported_at)
    return data


def _ref(ctx: Any, p: v.Problems, i: PublishTestResultInput) -> str | None:
    """The person's pseudonym, from the personId or the ID number's blind index."""
    if p.at("input", "personId") or p.at("input", "idNumber"):
        return None
    return str(i.person_id) if i.person_id is not None else ctx.indexer.person_ref(i.id_number)


async def _check_visit(
    ctx: Any, p: v.Problems, i: PublishTestResultInput, ref: str | None, source: Source
) -> bool:
    """Whether the input names a visit of this person at the publishing hospital that began
    within the treating window: the bureau's record that this hospital treats the person,
    which a result needs. A hospital cannot make itself treating by publishing.

    Every failure is the same one problem (no such visit, another person's or hospital's,
    too old), so the answer says nothing about persons or visits the hospital is not
    related to."""
    path = ["input", "visitId"]
    window = ctx.services.policy.treating_window_days
    if i.visit_id is None:
        p.add(
            path,
            "is required: the visit (mdtrt_id) of this person at your hospital, within the "
            f"last {window} days, that the test was ordered in",
        )
        return False
    if p.at(*path) or ref is None:
        return False
    institution = source.spec.institution or ""
    bureau = lookups.bureau_of(ctx, codes.province_of(codes.region_of_institution(institution)))
    visit = None if bureau is None else await lookups.visit_at(ctx, bureau, str(i.visit_id))
    if (
        visit is None
        or visit["person_ref"] != ref
        or visit["institution_code"] != institution
        or visit["begin_date"] < treating_since(ctx)
    ):
        p.add(path, f"is not a visit of this person at your hospital within the last {window} days")
        return False
    return True


async def _person(
    ctx: Any, p: v.Problems, i: PublishTestResultInput, ref: str, source: Source
) -> tuple[dict | None, dict | None]:
    """The hospital's patient row if it knows the person, else their bureau row."""
    patient = await lookups.patient_at(ctx, source, ref)
    if patient is not None:
        return patient, None
    rows = await lookups.persons_at(ctx, ctx.registry.of_kind("bureau"), ref)
    if not rows:
        path = ["input", "personId" if i.person_id is not None else "idNumber"]
        p.add(path, "no insurance bureau of this federation knows this person")
        return None, None
    return None, rows[0]


def _new_patient(ctx: Any, source: Source, ref: str, bureau_row: dict) -> dict[str, Any]:
    """A patient-index row for a person the hospital did not know, from their bureau row."""
    digest = hashlib.sha256(f"{source.name}\0{ref}".encode()).hexdigest()
    # Derived, not random: two results for the same new person published at once must
    # create one patient, not two.
    patient_no = "PT" + digest[:18].upper()
    name = lookups.decrypt_person_field(ctx, bureau_row, "name_enc")
    id_number = lookups.decrypt_person_field(ctx, bureau_row, "id_number_enc")

    def seal(column: str, value: str) -> bytes:
        return ctx.cipher.encrypt(
            value, source=source.name, table="patients", column=column, row_key=patient_no
        )

    return {
        "patient_no": patient_no,
        "person_ref": ref,
        "id_number_bidx": ctx.indexer.id_number(id_number),
        "name_enc": seal("name_enc", name),
        "id_number_enc": seal("id_number_enc", id_number),
    }


async def _load(ctx: Any, info: strawberry.Info, created: Created) -> TestResult | None:
    row = await lookups.read_created(ctx, created.source, RESULTS, "result_id", created.object_id)
    return None if row is None else TEST_RESULT.build(ctx, row, requested(info, "testResult"))


async def publish_test_result(
    info: strawberry.Info,
    idempotency_key: Annotated[
        str,
        strawberry.argument(
            description="Client-chosen key (1-64 of A-Z a-z 0-9 _ -): the same key with the same "
            "input publishes once."
        ),
    ],
    input: Annotated[PublishTestResultInput, strawberry.argument(description="The result.")],
) -> PublishTestResultPayload:
    ctx = info.context
    source = _caller_hospital(ctx)
    p = v.Problems()
    call = IdempotentCall(ctx, OPERATION, idempotency_key, p)
    if (earlier := await call.earlier(_canonical(ctx, input))) is not None:
        return PublishTestResultPayload(test_result=await _load(ctx, info, earlier), replayed=True)
    fields = _check_static(p, input, v.beijing_now(ctx.now))
    ref = _ref(ctx, p, input)
    patient = bureau_row = None
    if await _check_visit(ctx, p, input, ref, source):
        assert ref is not None
        patient, bureau_row = await _person(ctx, p, input, ref, source)
    p.raise_if_any(OPERATION)
    assert ref is not None
    if (twin := await call.claim()) is not None:
        return PublishTestResultPayload(test_result=await _load(ctx, info, twin), replayed=True)

    result_id = call.new_id("R", 24)
    new_patient = None
    if patient is None:
        assert bureau_row is not None
        new_patient = _new_patient(ctx, source, ref, bureau_row)
        patient = new_patient

    def seal(column: str, value: str | None) -> bytes | None:
        return (
            None
            if value is None
            else ctx.cipher.encrypt(
                value, source=source.name, table="test_results", column=column, row_key=result_id
            )
        )

    imaging = input.category == TestCategory.IMAGING
    row = {
        "result_id": result_id,
        "person_ref": ref,
        "patient_no": patient["patient_no"],
        "institution_code": source.spec.institution,
        "mdtrt_id": str(input.visit_id),
        "category": input.category.value,
        "item_code": fields["modality"] if imaging else fields["item_code"],
        "item_name": fields["item_name"],
        "value": fields.get("value"),
        "unit": fields.get("unit"),
        "ref_low": fields.get("ref_low"),
        "ref_high": fields.get("ref_high"),
        "flag": fields.get("flag"),
        "modality": fields.get("modality"),
        "body_part": fields.get("body_part"),
        "findings_enc": seal("findings_enc", fields.get("findings")),
        "impression_enc": seal("impression_enc", fields.get("impression")),
        "study_uid": fields.get("study_uid"),
        "ordering_doctor": input.ordering_doctor,
        "collected_at": fields["collected_at"],
        "reported_at": fields["reported_at"],
    }
    await call.write(
        ctx,
        Target(source.name, RESULTS.name, "result_id", result_id, person=ref),
        lambda: lookups.ask(ctx, source, lambda e: writers.write_test_result(e, row, new_patient)),
    )
    await anchoring.anchor(ctx, source, RESULTS.name, [result_id])
    created = Created(source.name, result_id)
    await call.done(created)
    return PublishTestResultPayload(test_result=await _load(ctx, info, created), replayed=False)
