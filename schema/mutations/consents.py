"""Consents (知情同意): a patient lets an institution read some classes of their data for one
purpose during a period, lists who holds consent, and revokes it. Stored in the gateway's
own database (``security.consent``), read by the field policy on every request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError

from connectors.domain import codes
from schema.errors import NOT_FOUND, forbidden
from schema.mutations import lookups
from schema.mutations import validation as v
from schema.mutations.enums import ConsentStatusEnum, DataClassEnum, PurposeOfUse
from schema.mutations.idempotent import Created, IdempotentCall, Target
from schema.pagination import Connection, connection, decode_cursor, page_size
from schema.types.institution import Institution, institution_of
from security.consent import Consent, ConsentNotFound, ConsentStore, DataClass, NotYourConsent
from security.consent.models import ConsentRow
from security.identity.roles import Purpose, Role

GATEWAY = "gateway"
# Purposes a consent cannot meaningfully grant: the patient's own access needs none,
# break-glass is by definition without consent, and audit is not the patient's to give.
CONSENTS = ConsentRow.__table__
NOT_CONSENTABLE = frozenset({Purpose.PATIENT_ACCESS, Purpose.EMERGENCY, Purpose.AUDIT})
# Consents must end; five years bounds what a forgotten consent can expose.
MAX_PERIOD = timedelta(days=5 * 366)


@strawberry.type(
    name="Consent",
    description="A patient's consent (知情同意) for one "
    "institution to read some classes of their data "
    "for one purpose during a period.",
)
class ConsentNode:
    consent_id: strawberry.ID = strawberry.field(description="Consent identifier.")
    grantee: str = strawberry.field(description="Code of the institution that holds the consent.")
    data_classes: list[DataClassEnum] = strawberry.field(description="Classes of data it covers.")
    purpose: PurposeOfUse = strawberry.field(description="The one purpose it covers.")
    valid_from: datetime = strawberry.field(description="When it begins (UTC).")
    valid_until: datetime = strawberry.field(description="When it ends (UTC), exclusive.")
    granted_at: datetime = strawberry.field(description="When it was granted (UTC).")
    revoked_at: datetime | None = strawberry.field(
        description="When it was revoked (UTC), if it was."
    )
    status: ConsentStatusEnum = strawberry.field(description="Where it stands now.")

    @strawberry.field(description="The institution that holds the consent.")
    async def grantee_institution(self, info: strawberry.Info) -> Institution | None:
        return await institution_of(info, self.grantee)

    @classmethod
    def of(cls, consent: Consent, now: datetime) -> ConsentNode:
        return cls(
            consent_id=strawberry.ID(consent.consent_id),
            grantee=consent.grantee,
            data_classes=[DataClassEnum(c.value) for c in DataClass if c in consent.data_classes],
            purpose=PurposeOfUse(consent.purpose.value),
            valid_from=consent.valid_from,
            valid_until=consent.valid_until,
            granted_at=consent.granted_at,
            revoked_at=consent.revoked_at,
            status=ConsentStatusEnum(consent.status(now).value),
        )


@strawberry.input(
    description="A consent to grant. Times without an offset are China Standard Time."
)
class GrantConsentInput:
    grantee: str = strawberry.field(
        description="Institution to consent to: a hospital (H…) or pharmacy (P…) code in the "
        "directory; for research use a research institute (R…) or a commercial insurer "
        "(C…, also for UNDERWRITING)."
    )
    data_classes: list[DataClassEnum] = strawberry.field(
        description="Classes of data it covers; at least one."
    )
    purpose: PurposeOfUse = strawberry.field(
        description="The purpose it covers; not PATIENT_ACCESS, EMERGENCY or AUDIT."
    )
    valid_until: datetime = strawberry.field(
        description="When it ends: in the future, at most five years after it begins."
    )
    valid_from: datetime | None = strawberry.field(
        default=None, description="When it begins; now when left out."
    )


@strawberry.type(description="What grantConsent did.")
class GrantConsentPayload:
    consent: ConsentNode | None = strawberry.field(description="The consent.")
    replayed: bool = strawberry.field(
        description="True when this idempotencyKey had already "
        "granted this input: nothing new was "
        "written and the first consent is "
        "returned."
    )


@strawberry.type(description="What revokeConsent did.")
class RevokeConsentPayload:
    consent: ConsentNode | None = strawberry.field(description="The consent, now REVOKED.")
    replayed: bool = strawberry.field(
        description="True when this idempotencyKey had already revoked it."
    )


def _store(ctx: Any) -> ConsentStore:
    return ConsentStore(ctx.services.gateway_engine)


def _patient(ctx: Any, operation: str) -> str:
    if ctx.principal.role != Role.PATIENT or not ctx.principal.person_ref:
        raise forbidden(f"{operation} is for patients, for their own consents")
    return ctx.principal.person_ref


def _aware(moment: datetime) -> datetime:
    # Naive API times are China Standard Time (see validation.beijing).
    return moment.replace(tzinfo=v.BEIJING) if moment.tzinfo is None else moment


# Who may hold a consent for research use (科研) or underwriting: a research institute (R…)
# may hold RESEARCH, a commercial insurer (C…) RESEARCH or UNDERWRITING. Either then sees the
# consented person with more detail in de-identified extracts (docs/open-data.md).
PARTNER_PURPOSES = {
    "R": frozenset({Purpose.RESEARCH}),
    "C": frozenset({Purpose.RESEARCH, Purpose.UNDERWRITING}),
}


def is_partner(code: str) -> bool:
    return code[:1] in PARTNER_PURPOSES


def _check(p: v.Problems, i: GrantConsentInput, now: datetime) -> tuple[datetime, datetime]:
    if is_partner(i.grantee):
        if problem := codes.validate_partner(i.grantee):
            p.add(["input", "grantee"], problem)
        elif Purpose(i.purpose.value) not in PARTNER_PURPOSES[i.grantee[0]]:
            allowed = " or ".join(sorted(x.value for x in PARTNER_PURPOSES[i.grantee[0]]))
            p.add(["input", "purpose"], f"a consent to this grantee is for {allowed} only")
    else:
        v.institution(p, ["input", "grantee"], i.grantee)
    if not i.data_classes:
        p.add(["input", "dataClasses"], "must name at least one class of data")
    if Purpose(i.purpose.value) in NOT_CONSENTABLE:
        p.add(["input", "purpose"], f"{i.purpose.value} cannot be consented to")
    begins = now if i.valid_from is None else _aware(i.valid_from)
    ends = _aware(i.valid_until)
    if ends <= begins:
        p.add(["input", "validUntil"], "must be after validFrom")
    elif ends <= now:
        p.add(["input", "validUntil"], "is in the past")
    elif ends - begins > MAX_PERIOD:
        p.add(["input", "validUntil"], "may be at most five years after validFrom")
    return begins, ends


def _canonical(i: GrantConsentInput) -> dict[str, Any]:
    begins = None if i.valid_from is None else _aware(i.valid_from).astimezone(UTC)
    return {
        "grantee": i.grantee,
        "data_classes": {c.value for c in i.data_classes},
        "purpose": i.purpose,
        "valid_from": begins,
        "valid_until": _aware(i.valid_until).astimezone(UTC),
    }


async def _load(ctx: Any, created: Created, now: datetime) -> ConsentNode | None:
    consent = await _store(ctx).get(created.object_id)
    return None if consent is None else ConsentNode.of(consent, now)


KEY_DESCRIPTION = (
    "Client-chosen key (1-64 of A-Z a-z 0-9 _ -): the same key with the same input acts once."
)


async def grant_consent(
    info: strawberry.Info,
    idempotency_key: Annotated[str, strawberry.argument(description=KEY_DESCRIPTION)],
    input: Annotated[GrantConsentInput, strawberry.argument(description="The consent.")],
) -> GrantConsentPayload:
    ctx = info.context
    ref = _patient(ctx, "grantConsent")
    now = ctx.now.astimezone(UTC).replace(microsecond=0)
    p = v.Problems()
    call = IdempotentCall(ctx, "grantConsent", idempotency_key, p)
    if (earlier := await call.earlier(_canonical(input))) is not None:
        return GrantConsentPayload(consent=await _load(ctx, earlier, now), replayed=True)
    begins, ends = _check(p, input, now)
    if (
        not p.at("input", "grantee")
        and not is_partner(input.grantee)
        and await lookups.institution_row(ctx, input.grantee) is None
    ):
        p.add(["input", "grantee"], "is not in the institution directory")
    p.raise_if_any("grantConsent")
    if (twin := await call.claim()) is not None:
        return GrantConsentPayload(consent=await _load(ctx, twin, now), replayed=True)
    consent_id = call.new_id("C", 32)
    granted: list[Consent] = []

    async def grant() -> None:
        granted.append(
            await _store(ctx).grant(
                consent_id=consent_id,
                person_ref=ref,
                grantee=input.grantee,
                data_classes=[DataClass(c.value) for c in input.data_classes],
                purpose=Purpose(input.purpose.value),
                valid_from=begins,
                valid_until=ends,
                now=now,
            )
        )

    await call.write(
        ctx, Target(GATEWAY, CONSENTS.name, "consent_id", consent_id, person=ref), grant
    )
    consent = granted[0]
    await call.done(Created(GATEWAY, consent.consent_id))
    return GrantConsentPayload(consent=ConsentNode.of(consent, now), replayed=False)


async def revoke_consent(
    info: strawberry.Info,
    idempotency_key: Annotated[str, strawberry.argument(description=KEY_DESCRIPTION)],
    consent_id: Annotated[
        strawberry.ID,
        strawberry.argument(
            description="The consent to revoke; revoking a revoked consent changes nothing."
        ),
    ],
) -> RevokeConsentPayload:
    ctx = info.context
    ref = _patient(ctx, "revokeConsent")
    now = ctx.now.astimezone(UTC).replace(microsecond=0)
    p = v.Problems()
    call = IdempotentCall(ctx, "revokeConsent", idempotency_key, p)
    if (earlier := await call.earlier({"consent_id": str(consent_id)})) is not None:
        return RevokeConsentPayload(consent=await _load(ctx, earlier, now), replayed=True)
    p.raise_if_any("revokeConsent")
    store = _store(ctx)
    consent = await store.get(str(consent_id))
    if consent is None:
        raise GraphQLError(
            "revokeConsent: no consent has this consentId", extensions={"code": NOT_FOUND}
        )
    if consent.person_ref != ref:
        raise forbidden("a patient may only revoke their own consents")
    await call.claim()
    revoked: list[Consent] = []

    async def revoke() -> None:
        try:
            revoked.append(await store.revoke(str(consent_id), person_ref=ref, now=now))
        except (ConsentNotFound, NotYourConsent):  # checked above; kept for a racing delete
            raise forbidden("a patient may only revoke their own consents") from None

    target = Target(
        GATEWAY, CONSENTS.name, "consent_id", str(consent_id), person=ref, applied_when="revoked_at"
    )
    await call.write(ctx, target, revoke)
    consent = revoked[0]
    await call.done(Created(GATEWAY, consent.consent_id))
    return RevokeConsentPayload(consent=ConsentNode.of(consent, now), replayed=False)


@strawberry.type(description="Consent entry points.")
class ConsentQuery:
    @strawberry.field(
        description="The calling patient's consents in every state (who holds "
        "consent, for what, until when), newest first. Patients "
        "only. first: at most 100 (default 20); after: a cursor "
        "from pageInfo.endCursor."
    )
    async def my_consents(
        self,
        info: strawberry.Info,
        first: Annotated[
            int | None, strawberry.argument(description="Page size, 1-100 (default 20).")
        ] = None,
        after: Annotated[
            str | None,
            strawberry.argument(description="Cursor from pageInfo.endCursor of the previous page."),
        ] = None,
    ) -> Connection[ConsentNode]:
        ctx = info.context
        ref = _patient(ctx, "myConsents")
        limit = page_size(first)
        cursor = decode_cursor(after, (datetime, str))
        consents = await _store(ctx).list_for(ref, limit=limit + 1, after=cursor)
        now = ctx.now.astimezone(UTC)
        return connection(
            [((c.granted_at, c.consent_id), ConsentNode.of(c, now)) for c in consents],
            limit,
            after,
        )
