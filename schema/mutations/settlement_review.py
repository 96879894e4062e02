"""The claims review before settlement: recordSettlement runs the rule base
(``connectors/domain/claims_rules.toml``) on the settlement it is about to write, with the same
facts the scan after settlement reads. A hit of grade 4 refuses the settlement
(``CLAIM_REFUSED``, naming each rule); lower grades are warnings in the answer. Either way the
hits are stored as warnings (phase PRE) for the supervisors."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError

from connectors.registry import Source
from connectors.sql.queries import Row
from connectors.supervision import facts as fx
from connectors.supervision.rules import Hit
from connectors.supervision.scan import warning_of
from schema.mutations import lookups
from security import warnings as store

CLAIM_REFUSED = "CLAIM_REFUSED"


@strawberry.type(description="A claims rule that this settlement hit (智能审核).")
class ClaimWarning:
    rule: str = strawberry.field(description="The rule's id in the rule base.")
    grade: int = strawberry.field(description="1 notice, 2 attention, 3 serious, 4 blocking.")
    title: str = strawberry.field(description="What the rule finds.")
    detail: str = strawberry.field(description="What it found here (codes and dates only).")


async def person_rows(ctx: Any, person: str) -> fx.PersonRows:
    """The person's visits, settlements and enrolments at every bureau and the platform."""
    found = await fx.person_rows(
        lookups.asker(ctx), ctx.registry.of_kind("bureau"), lookups.platform_source(ctx), [person]
    )
    return found[person]


async def review(ctx: Any, claim: Row, rows: fx.PersonRows, treatment: Source) -> list[Hit]:
    rules = ctx.services.claims_rules
    if not rules.enabled():
        return []
    ask = lookups.asker(ctx)
    prescriptions = await fx.prescriptions_of(ask, treatment, [claim["mdtrt_id"]])
    dispensed = await fx.dispensings_of(ask, ctx.registry.of_kind("pharmacy"), prescriptions)
    facts = fx.facts_for(
        claim, rows, treatment.name, {claim["mdtrt_id"]: prescriptions}, {}, dispensed
    )
    volume = rules.get("DOCTOR_VOLUME")
    if facts.visit is not None and volume is not None and volume.enabled:
        day = facts.visit["begin_date"]
        busy = await fx.busy_doctor_days(
            ask,
            treatment,
            day,
            day,
            volume.params["max_visits_per_day"],
            doctor=facts.visit["doctor_code"],
        )
        facts.doctor_day_visits = busy.get((facts.visit["doctor_code"], day), 0)
    return rules.review(claim, facts, ctx.services.benefits)


def warnings_of(ctx: Any, hits: list[Hit]) -> list[ClaimWarning]:
    rules = ctx.services.claims_rules
    return [
        ClaimWarning(rule=h.rule, grade=h.grade, title=rules.get(h.rule).title, detail=h.detail)
        for h in hits
    ]


async def keep(
    ctx: Any, hits: list[Hit], claim: Row, source: str, doctor: str | None, settled: bool
) -> None:
    """Open the hits as PRE warnings (through the log): of the written settlement, or of
    the refused visit."""
    engine = ctx.services.gateway_engine
    if engine is None or not hits:
        return
    await store.record(
        engine,
        ctx.services.extras.get("audit"),
        [
            warning_of(h, claim, phase="PRE", source=source, doctor=doctor, settled=settled)
            for h in hits
        ],
        principal=ctx.principal,
        purpose=str(ctx.purpose),
        request_id=ctx.request_id,
    )


def refused(hits: list[Hit]) -> GraphQLError:
    blocking = [h for h in hits if h.grade >= 4]
    return GraphQLError(
        "recordSettlement: refused by the claims rule base: "
        + "; ".join(f"{h.rule}: {h.detail}" for h in blocking),
        extensions={
            "code": CLAIM_REFUSED,
            "rules": [{"rule": h.rule, "grade": h.grade, "detail": h.detail} for h in blocking],
        },
    )
