"""fileForCrossRegionCare (异地就医备案): filing with the national platform so that a person
insured in one region can be treated in another with direct settlement."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

import strawberry

from connectors.domain import codes
from connectors.sql import writers
from connectors.sql.models import platform
from schema.enums import FilingCategory, FilingChannel
from schema.errors import forbidden
from schema.mutations import lookups
from schema.mutations import validation as v
from schema.mutations.idempotent import Created, IdempotentCall, Target
from schema.selection import requested
from schema.types.filings import FILING, Filing
from security.identity.roles import Role

OPERATION = "fileForCrossRegionCare"
FILINGS = platform.Filing.__table__
# Filings for a passing need expire; those for a new home (retirees, long-term residents)
# may stay open-ended.
MAX_DAYS = {
    FilingCategory.TEMPORARY: 365,
    FilingCategory.REFERRAL: 365,
    FilingCategory.EMERGENCY: 365,
}


@strawberry.input(
    description="A filing (备案) for care outside the insured region. The "
    "destination is another province, or another city of the same "
    "province. TEMPORARY, REFERRAL and EMERGENCY filings need "
    "`validUntil`, at most one year after `validFrom`."
)
class FileForCrossRegionCareInput:
    insured_region: str = strawberry.field(
        description="Insured place (参保地), the person's insured region at their bureau."
    )
    destination: str = strawberry.field(
        description="Destination (就医地): a province or city code."
    )
    category: FilingCategory = strawberry.field(description="Filing category (备案类别).")
    channel: FilingChannel = strawberry.field(description="Where it is filed (备案渠道).")
    valid_from: date = strawberry.field(description="First day it applies.")
    valid_until: date | None = strawberry.field(
        default=None,
        description="Last day it applies; after validFrom, and not in the past "
        "except for EMERGENCY filings made after the care (补办). "
        "Open-ended when left out (RELOCATED_RETIREE and "
        "LONG_TERM_RESIDENT only).",
    )
    person_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Whom it is for: required for an insurance agency; a "
        "patient files for themself and may leave it out.",
    )


@strawberry.type(description="What fileForCrossRegionCare did.")
class FileForCrossRegionCarePayload:
    filing: Filing | None = strawberry.field(description="The filing, as `filings` returns it.")
    replayed: bool = strawberry.field(
        description="True when this idempotencyKey had already "
        "filed this input: nothing new was written "
        "and the first filing is returned."
    )


def _whom(ctx: Any, p: v.Problems, i: FileForCrossRegionCareInput) -> str | None:
    """The person filed for: a patient's own, or the agency's choice."""
    principal = ctx.principal
    if principal.role == Role.PATIENT:
        if i.person_id is not None and str(i.person_id) != principal.person_ref:
            raise forbidden("a patient may only file for themself")
        return principal.person_ref
    if principal.role != Role.INSURANCE_AGENCY:
        raise forbidden(
            "fileForCrossRegionCare is for patients (for themselves) and insurance agencies"
        )
    if i.person_id is None:
        p.add(["input", "personId"], "is required when an insurance agency files")
        return None
    return v.person_id(p, ["input", "personId"], str(i.person_id))


def _check_scope(ctx: Any, insured: str | None) -> None:
    principal = ctx.principal
    if principal.role != Role.INSURANCE_AGENCY or insured is None:
        return
    if codes.validate_region(principal.org) or not v.covers(principal.org, insured):
        raise forbidden("an insurance agency may only file for persons insured in its own region")


def _check_static(p: v.Problems, i: FileForCrossRegionCareInput, today: date) -> None:
    insured = v.region(p, ["input", "insuredRegion"], i.insured_region)
    destination = v.region(p, ["input", "destination"], i.destination)
    if insured and destination:
        same_province = codes.province_of(insured) == codes.province_of(destination)
        if same_province and (destination.endswith("0000") or destination[:4] == insured[:4]):
            p.add(
                ["input", "destination"],
                "must be another province, or another city of the insured province",
            )
    limit = MAX_DAYS.get(i.category)
    if i.valid_until is None:
        if limit is not None:
            p.add(["input", "validUntil"], f"is required for a {i.category.value} filing")
        return
    if i.valid_until <= i.valid_from:
        p.add(["input", "validUntil"], "must be after validFrom")
    elif limit is not None and i.valid_until - i.valid_from > timedelta(days=limit):
        p.add(
            ["input", "validUntil"],
            f"may be at most {limit} days after validFrom for a {i.category.value} filing",
        )
    # Emergency care is filed afterwards (补办备案); any other filing that is already over
    # is a mistake, most often a wrong year.
    if i.valid_until < today and i.category != FilingCategory.EMERGENCY:
        p.add(
            ["input", "validUntil"],
            "is in the past (only EMERGENCY filings may be made after the care)",
        )


async def _insured_person(
    ctx: Any, p: v.Problems, i: FileForCrossRegionCareInput, ref: str | None
) -> dict | None:
    """The person's row at the bureau of the insured province, the source of their name."""
    if ref is None or p.at("input", "insuredRegion"):
        return None
    bureau = lookups.bureau_of(ctx, codes.province_of(i.insured_region))
    if bureau is None:
        p.add(["input", "insuredRegion"], "no bureau of this province is part of the federation")
        return None
    rows = await lookups.persons_at(ctx, [bureau], ref)
    path = ["input", "personId"] if i.person_id is not None else ["input", "insuredRegion"]
    if not rows:
        p.add(path, "the bureau of the insured province does not know this person")
        return None
    if rows[0]["insuplc_admdvs"] != i.insured_region:
        p.add(["input", "insuredRegion"], "must be the person's insured place at their bureau")
    return rows[0]


async def _load(ctx: Any, info: strawberry.Info, created: Created) -> Filing | None:
    row = await lookups.read_created(ctx, created.source, FILINGS, "filing_id", created.object_id)
    return None if row is None else FILING.build(ctx, row, requested(info, "filing"))


async def file_for_cross_region_care(
    info: strawberry.Info,
    idempotency_key: Annotated[
        str,
        strawberry.argument(
            description="Client-chosen key (1-64 of A-Z a-z 0-9 _ -): the same key with the same "
            "input files once."
        ),
    ],
    input: Annotated[FileForCrossRegionCareInput, strawberry.argument(description="The filing.")],
) -> FileForCrossRegionCarePayload:
    ctx = info.context
    p = v.Problems()
    ref = _whom(ctx, p, input)
    call = IdempotentCall(ctx, OPERATION, idempotency_key, p)
    if (earlier := await call.earlier({**strawberry.asdict(input), "person": ref})) is not None:
        return FileForCrossRegionCarePayload(filing=await _load(ctx, info, earlier), replayed=True)
    now = v.beijing_now(ctx.now)
    _check_static(p, input, now.date())
    _check_scope(ctx, None if p.at("input", "insuredRegion") else input.insured_region)
    platform_source = lookups.platform_source(ctx)
    if platform_source is None:
        p.add(
            ["input"],
            "filings are kept by the national platform, which is not part of the federation",
        )
    person = await _insured_person(ctx, p, input, ref)
    p.raise_if_any(OPERATION)
    assert ref is not None and person is not None and platform_source is not None
    if (twin := await call.claim()) is not None:
        return FileForCrossRegionCarePayload(filing=await _load(ctx, info, twin), replayed=True)

    filing_id = call.new_id("F", 24)
    # The platform keeps its own copy of the name, sealed under its own key and bound to the
    # filing row; the ID number travels only as its blind index.
    name = lookups.decrypt_person_field(ctx, person, "name_enc")
    id_number = lookups.decrypt_person_field(ctx, person, "id_number_enc")
    row = {
        "filing_id": filing_id,
        "person_ref": ref,
        "id_number_bidx": ctx.indexer.id_number(id_number),
        "name_enc": ctx.cipher.encrypt(
            name, source=platform_source.name, table="filings", column="name_enc", row_key=filing_id
        ),
        "insuplc_admdvs": input.insured_region,
        "mdtrtarea_admvs": input.destination,
        "category": input.category.value,
        "channel": input.channel.value,
        "status": "ACTIVE",
        "filed_at": now.replace(microsecond=0),
        "valid_from": input.valid_from,
        "valid_until": input.valid_until,
    }
    await call.write(
        ctx,
        Target(platform_source.name, FILINGS.name, "filing_id", filing_id, person=ref),
        lambda: lookups.ask(ctx, platform_source, lambda e: writers.write_filing(e, row)),
    )
    created = Created(platform_source.name, filing_id)
    await call.done(created)
    return FileForCrossRegionCarePayload(filing=await _load(ctx, info, created), replayed=False)
