"""Producing a de-identified extract (an approved job, or ``medfed extract``).

Rows: one per visit at the bureaus, joined to the insured person and the settlement. Only
the classes the partner's grade opens (``[grades.extract]`` of the policy file) become
columns; a person who consented to this partner's research (a consent naming its R… or C…
code for the purpose) may also show the grade's ``consented_classes``. Then:

* the person becomes a per-partner pseudonym (``security.privacy.pseudonyms``);
* birth date to a year or a 5-year band, the insured place to a city or province, the visit
  date to its month (``detail`` = fine or coarse), then further where needed;
* k-anonymity on (birth, gender, region, period) with l-diversity on the diagnosis, by
  generalising and then suppressing (``security.privacy.kanon``);
* written as Parquet or CSV with ``dictionary.json``, and an EXTRACT audit event naming the
  parameters, the counts and the file's SHA-256.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.domain.drug_classes import DRUG_CLASSES, OTHER
from connectors.extracts import drug_codes, visit_rows
from connectors.fanout import Deadline
from schema.extracts.files import COLUMNS, write
from security.audit.events import extract_event
from security.consent import ConsentStore
from security.errors import MedfedError
from security.identity.roles import Purpose, Role
from security.policy.grades import ExtractGrade, Opening
from security.privacy.extract_jobs import FAILED, WRITTEN, ExtractJob, ExtractJobs
from security.privacy.kanon import AGE, GENDER, PERIOD, REGION, anonymise
from security.privacy.pseudonyms import PartnerPseudonyms

KEYRING = "keyring"  # Services.extras: the keyring (per-partner pseudonym keys)
EXTRACTS_DIR = "extracts_dir"  # Services.extras: where extracts are written
RECORDER = "audit"
CLASS_COLUMNS = {
    "identity": ("pseudonym", "birth", "gender", "region"),
    "visit": ("period", "visit_type", "institution_level", "treatment_province"),
    "diagnosis": ("diagnosis",),
    "settlement": ("total_cost", "fund_payment"),
    "prescription": ("drug_classes",),
}


class ExtractRefused(MedfedError):
    """The job asks for what the grade does not open (the message says what)."""


def extract_grade(policy: Any, role: str, purpose: str) -> ExtractGrade | None:
    for grade in policy.grades:
        if (
            grade.opening is Opening.DP
            and Role(role) in grade.roles
            and Purpose(purpose) in grade.purposes
        ):
            return grade.extract
    return None


def check(policy: Any, role: str, purpose: str, classes: tuple[str, ...]) -> ExtractGrade:
    grade = extract_grade(policy, role, purpose)
    if grade is None:
        raise ExtractRefused(f"no grade opens extracts to role {role} for purpose {purpose}")
    if "identity" not in classes:
        raise ExtractRefused("an extract needs the identity class (its generalised persons)")
    unknown = sorted(set(classes) - set(CLASS_COLUMNS))
    if unknown:
        raise ExtractRefused(f"no extract columns for class {', '.join(unknown)}")
    refused = sorted(set(classes) - grade.consented_classes)
    if refused:
        raise ExtractRefused(f"the grade does not open class {', '.join(refused)}")
    return grade


def _category(codes: str) -> str:
    first = (codes or "").split(",")[0].strip()
    return first[:3] if first else "UNKNOWN"


def _ten_yuan(fen: int | None) -> float | None:
    return None if fen is None else round(fen / 1000) * 10.0


async def produce(services: Any, job: ExtractJob, now: datetime | None = None) -> dict:
    """Write the extract of an approved job; returns its outcome (also stored on the job)."""
    now = now or datetime.now(UTC)
    jobs = ExtractJobs(services.gateway_engine)
    try:
        outcome = await _produce(services, job, now)
    except Exception as exc:
        await jobs.finish(job.job_id, FAILED, error=type(exc).__name__)
        raise
    await jobs.finish(job.job_id, WRITTEN, **dict(outcome))
    recorder = services.extras.get(RECORDER)
    if recorder is not None:
        await recorder.record(
            extract_event(
                principal=None,
                purpose=job.purpose,
                action="WRITTEN",
                extract={"jobId": job.job_id, "partner": job.org, "role": job.role, **outcome},
                request_id=job.job_id,
            )
        )
    return outcome


async def _produce(services: Any, job: ExtractJob, now: datetime) -> dict:
    grade = check(services.policy, job.role, job.purpose, job.classes)
    base = set(job.classes) & grade.classes
    extra = set(job.classes) - grade.classes  # consented persons only
    keyring = services.extras[KEYRING]
    pseudonyms = PartnerPseudonyms(keyring, job.org)
    consented = await ConsentStore(services.gateway_engine).consented_to(job.org, job.purpose, now)
    levels = await _levels(services)
    found, failures = await visit_rows(list(services.registry), Deadline(120))
    if failures:
        raise RuntimeError(f"sources did not answer: {', '.join(f.source for f in failures)}")
    births: dict[tuple[str, str], str] = {}
    records = []
    drugs_wanted: dict[str, list[str]] = {}
    for source_name, rows in found.items():
        for row in rows:
            ref = row["person_ref"]
            more = extra & consented.get(ref, frozenset())
            cell = (source_name, row["psn_no"])
            if cell not in births:
                births[cell] = services.cipher.decrypt(
                    row["birth_date_enc"],
                    source=source_name,
                    table="persons",
                    column="birth_date_enc",
                    row_key=row["psn_no"],
                )
            classes = base | more
            record: dict[str, Any] = {
                "_ref": ref,
                "_classes": classes,
                "pseudonym": pseudonyms.of(ref),
                "birth": births[cell][:4],
                "gender": row["gender"],
                "region": row["insuplc_admdvs"],
                "period": row["begin_date"].isoformat()[:7],
                "diagnosis": _category(row["diagnosis_codes"]),
            }
            if "visit" in classes:
                record["visit_type"] = row["visit_type"]
                record["institution_level"] = levels.get(row["institution_code"], "UNKNOWN")
                record["treatment_province"] = f"{row['mdtrtarea_admvs'][:2]}0000"
            if "settlement" in classes:
                record["total_cost"] = _ten_yuan(row["total_fen"])
                record["fund_payment"] = _ten_yuan(row["fund_pay_fen"])
            if "prescription" in classes:
                drugs_wanted.setdefault(source_name, []).append(row["mdtrt_id"])
                record["_visit"] = (source_name, row["mdtrt_id"])
            records.append(record)
    prescribed: dict[tuple[str, str], set[str]] = {}
    for source_name, visits in drugs_wanted.items():
        found_codes = await drug_codes(services.registry.get(source_name), visits)
        for visit, codes in found_codes.items():
            prescribed[(source_name, visit)] = {
                c[:4] if c[:4] in DRUG_CLASSES else OTHER for c in codes
            }
    for record in records:
        if "_visit" in record:
            record["drug_classes"] = ",".join(sorted(prescribed.get(record.pop("_visit"), ())))
    hierarchies = [AGE, GENDER, REGION] + ([PERIOD] if "visit" in job.classes else [])
    fine = job.detail == "fine"
    start = {"birth": 0 if fine else 1, "region": 0 if fine else 1, "period": 0}
    sensitive = "diagnosis" if "diagnosis" in job.classes else "pseudonym"
    result = anonymise(
        records,
        person="_ref",
        sensitive=sensitive,
        hierarchies=hierarchies,
        start=start,
        k=grade.k,
        l=grade.l if sensitive == "diagnosis" else 1,
    )
    columns = [c for cls in CLASS_COLUMNS if cls in job.classes for c in CLASS_COLUMNS[cls]]
    if "visit" not in job.classes:
        columns = [c for c in columns if c != "period"]
    for row in result.rows:
        for column in columns:
            owner = COLUMNS[column][1]
            if owner not in row["_classes"] and owner != "identity":
                row[column] = None
    persons = len({r["_ref"] for r in result.rows})
    parameters = {
        "jobId": job.job_id,
        "partner": job.org,
        "grade": "DP",
        "classes": sorted(job.classes),
        "consentedClasses": sorted(extra),
        "consentedPersons": len({r["_ref"] for r in result.rows if r["_ref"] in consented}),
        "k": grade.k,
        "l": grade.l if sensitive == "diagnosis" else 1,
        "quasiIdentifiers": [h.name for h in hierarchies],
        "sensitive": sensitive if sensitive == "diagnosis" else None,
        "generalisation": result.levels,
        "suppressedRows": result.suppressed_rows,
        "equivalenceClasses": result.classes,
        "format": job.format,
        "writtenAt": now.astimezone(UTC).isoformat(),
    }
    directory = Path(services.extras[EXTRACTS_DIR]) / job.job_id
    path, digest = write(directory, result.rows, columns, job.format, parameters)
    return {
        **parameters,
        "rows": len(result.rows),
        "persons": persons,
        "sha256": digest,
        "path": str(path),
    }


async def _levels(services: Any) -> dict[str, str]:
    from sqlalchemy import select

    from connectors.sql.models import directory

    source = services.registry.directory()
    if source is None:
        return {}
    t = directory.Institution.__table__
    async with source.engine.connect() as conn:
        return {r.code: r.level for r in await conn.execute(select(t.c.code, t.c.level))}
