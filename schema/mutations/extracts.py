"""De-identified extracts as a job (GraphQL): a research partner requests one, an administrator
approves it (which writes it) or refuses it, and both can follow it in ``extractJobs``."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError

from schema.errors import NOT_FOUND, forbidden
from schema.extracts.produce import ExtractRefused, check, produce
from schema.mutations import validation as v
from schema.mutations.idempotent import Created, IdempotentCall, Target
from schema.times import stored
from security.audit.events import extract_event
from security.identity.roles import Role
from security.privacy.extract_jobs import APPROVED, REFUSED, ExtractJob, ExtractJobs

GATEWAY = "gateway"
JOBS = "extract_jobs"  # where the extract mutations write (security.privacy.extract_jobs)
PARTNERS = frozenset({Role.RESEARCHER, Role.COMMERCIAL_INSURER})
KEY = "Client-chosen key (1-64 of A-Z a-z 0-9 _ -): the same key with the same input acts once."


@strawberry.enum(description="Output format of an extract.")
class ExtractFormat(Enum):
    PARQUET = "parquet"
    CSV = "csv"


@strawberry.enum(description="How fine the generalisation starts (it coarsens as needed).")
class ExtractDetail(Enum):
    COARSE = strawberry.enum_value("coarse", description="5-year bands, provinces.")
    FINE = strawberry.enum_value("fine", description="Birth years, cities.")


@strawberry.input(description="What a de-identified extract should hold.")
class ExtractInput:
    classes: list[str] = strawberry.field(
        description="Catalogue classes: identity (required), visit, diagnosis, settlement, "
        "prescription; only those the caller's grade opens."
    )
    format: ExtractFormat = ExtractFormat.PARQUET
    detail: ExtractDetail = ExtractDetail.COARSE


@strawberry.type(name="ExtractJob", description="A de-identified extract job.")
class ExtractJobNode:
    job_id: strawberry.ID
    partner: str
    role: str
    purpose: str
    classes: list[str]
    detail: str
    format: str
    status: str = strawberry.field(description="REQUESTED, APPROVED, REFUSED, WRITTEN, FAILED.")
    requested_at: datetime
    decided_at: datetime | None
    rows: int | None
    persons: int | None
    sha256: str | None = strawberry.field(description="Of the written file.")
    k: int | None
    l: int | None  # noqa: E741
    suppressed_rows: int | None
    generalisation: list[str] = strawberry.field(description="quasi-identifier: level used.")

    @classmethod
    def of(cls, job: ExtractJob) -> ExtractJobNode:
        o = job.outcome or {}
        return cls(
            job_id=strawberry.ID(job.job_id),
            partner=job.org,
            role=job.role,
            purpose=job.purpose,
            classes=list(job.classes),
            detail=job.detail,
            format=job.format,
            status=job.status,
            requested_at=stored(job.requested_at),
            decided_at=stored(job.decided_at),
            rows=job.rows,
            persons=job.persons,
            sha256=job.sha256,
            k=o.get("k"),
            l=o.get("l"),
            suppressed_rows=o.get("suppressedRows"),
            generalisation=[f"{q}: {lv}" for q, lv in (o.get("generalisation") or {}).items()],
        )


@strawberry.type(description="What an extract mutation did.")
class ExtractJobPayload:
    job: ExtractJobNode | None
    replayed: bool


def _jobs(ctx: Any) -> ExtractJobs:
    return ExtractJobs(ctx.services.gateway_engine)


async def _audit(ctx: Any, action: str, job: ExtractJob, **more) -> None:
    recorder = ctx.services.extras.get("audit")
    if recorder is None:
        return
    details = {
        "jobId": job.job_id,
        "partner": job.org,
        "role": job.role,
        "classes": list(job.classes),
        "format": job.format,
        "detail": job.detail,
        **more,
    }
    await recorder.record(
        extract_event(
            principal=ctx.principal,
            purpose=ctx.purpose,
            action=action,
            extract=details,
            request_id=ctx.request_id,
        )
    )


async def request_extract(
    info: strawberry.Info,
    idempotency_key: Annotated[str, strawberry.argument(description=KEY)],
    input: ExtractInput,
) -> ExtractJobPayload:
    ctx = info.context
    principal = ctx.principal
    if principal.role not in PARTNERS:
        raise forbidden("extracts are requested by research institutes and commercial insurers")
    p = v.Problems()
    call = IdempotentCall(ctx, "requestExtract", idempotency_key, p)
    canonical = {
        "classes": sorted(input.classes),
        "format": input.format.value,
        "detail": input.detail.value,
    }
    if (earlier := await call.earlier(canonical)) is not None:
        job = await _jobs(ctx).get(earlier.object_id)
        return ExtractJobPayload(job=ExtractJobNode.of(job) if job else None, replayed=True)
    try:
        check(ctx.services.policy, principal.role.value, ctx.purpose.value, tuple(input.classes))
    except ExtractRefused as exc:
        p.add(["input", "classes"], str(exc))
    p.raise_if_any("requestExtract")
    if (twin := await call.claim()) is not None:
        job = await _jobs(ctx).get(twin.object_id)
        return ExtractJobPayload(job=ExtractJobNode.of(job) if job else None, replayed=True)
    job_id = call.new_id("X", 24)
    made: list[ExtractJob] = []

    async def request() -> None:
        made.append(await _jobs(ctx).request(new_job))

    new_job = ExtractJob(
        job_id=job_id,
        role=principal.role.value,
        org=principal.org,
        requested_by=f"{principal.issuer}|{principal.sub}",
        purpose=ctx.purpose.value,
        classes=tuple(sorted(set(input.classes))),
        detail=input.detail.value,
        format=input.format.value,
        status="REQUESTED",
        requested_at=ctx.now.astimezone(UTC),
    )
    await call.write(ctx, Target(GATEWAY, JOBS, "job_id", job_id), request)
    job = made[0]
    await _audit(ctx, "REQUESTED", job)
    await call.done(Created(GATEWAY, job.job_id))
    return ExtractJobPayload(job=ExtractJobNode.of(job), replayed=False)


async def _decide(info, idempotency_key: str, job_id: str, approve: bool) -> ExtractJobPayload:
    ctx = info.context
    if ctx.principal.role is not Role.ADMIN:
        raise forbidden("extracts are approved or refused by administrators")
    operation = "approveExtract" if approve else "refuseExtract"
    p = v.Problems()
    call = IdempotentCall(ctx, operation, idempotency_key, p)
    if (earlier := await call.earlier({"jobId": job_id})) is not None:
        job = await _jobs(ctx).get(earlier.object_id)
        return ExtractJobPayload(job=ExtractJobNode.of(job) if job else None, replayed=True)
    p.raise_if_any(operation)
    jobs = _jobs(ctx)
    job = await jobs.get(job_id)
    if job is None:
        raise GraphQLError(
            f"{operation}: no extract job has this jobId", extensions={"code": NOT_FOUND}
        )
    await call.claim()
    by = f"{ctx.principal.issuer}|{ctx.principal.sub}"

    async def decide() -> None:
        if not await jobs.decide(job_id, APPROVED if approve else REFUSED, by, ctx.now):
            raise forbidden(f"{operation}: the job is {job.status}, not REQUESTED")

    target = Target(GATEWAY, JOBS, "job_id", job_id, applied_when="decided_at")
    await call.write(ctx, target, decide)
    job = await jobs.get(job_id)
    await _audit(ctx, APPROVED if approve else REFUSED, job)
    if approve:
        await produce(ctx.services, job)
        job = await jobs.get(job_id)
    await call.done(Created(GATEWAY, job_id))
    return ExtractJobPayload(job=ExtractJobNode.of(job), replayed=False)


async def approve_extract(
    info: strawberry.Info,
    idempotency_key: Annotated[str, strawberry.argument(description=KEY)],
    job_id: strawberry.ID,
) -> ExtractJobPayload:
    return await _decide(info, idempotency_key, str(job_id), True)


async def refuse_extract(
    info: strawberry.Info,
    idempotency_key: Annotated[str, strawberry.argument(description=KEY)],
    job_id: strawberry.ID,
) -> ExtractJobPayload:
    return await _decide(info, idempotency_key, str(job_id), False)


@strawberry.type(description="Extract jobs.")
class ExtractQuery:
    @strawberry.field(
        description="Extract jobs, newest first: a partner's own, or every job for an "
        "administrator. At most 100."
    )
    async def extract_jobs(self, info: strawberry.Info, first: int = 20) -> list[ExtractJobNode]:
        ctx = info.context
        role = ctx.principal.role
        if role not in PARTNERS and role is not Role.ADMIN:
            raise forbidden("extract jobs are for research partners and administrators")
        org = None if role is Role.ADMIN else ctx.principal.org
        jobs = await _jobs(ctx).list(org, max(1, min(first, 100)))
        return [ExtractJobNode.of(j) for j in jobs]
