"""``schema.relations`` called directly: each relation comes only from its fact of record,
each window is pinned at its edge, and a caller's own claims never make one.

The facts live in the embedded SQLite sources and the gateway database of one small
federation, built once per module and copied per test (break-glass grants write to the
gateway database). Fast on purpose: ``make mutate`` runs these against every mutant of
``schema/relations.py``."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.domain.recognition import RecognitionCatalogue
from connectors.fanout import Deadline
from connectors.registry import SourceRegistry
from connectors.sql.engine import create_source_engine
from connectors.sql.models import bureau, platform
from gateway.startup import open_keyring
from schema.context import RequestContext, Services
from schema.relations import NO_RELATION, PersonRelation, treating_since
from security.consent import ConsentStore
from security.consent.classes import DataClass
from security.crypto import BlindIndexer, FieldCipher
from security.enforcement import FieldGuard, Relation
from security.identity.principal import Principal
from security.identity.roles import Purpose, Role
from security.policy.break_glass import GATEWAY_KEY_SOURCE, REASON_REQUIRED, UNAVAILABLE, Reason
from tests.support.federation import Federation, make_id_number

HOSPITAL = "H33010600001"  # Hangzhou
OTHER_HOSPITAL = "H37010200003"  # Jinan
PHARMACY = "P33010600001"
NOW = datetime(2026, 12, 1, 9, 30)
WINDOW = 180  # security/policy.toml [relations] treating_window_days
SINCE = (NOW - timedelta(days=WINDOW)).date()
REASON = Reason("UNCONSCIOUS", "brought in unconscious")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Persons and the facts that relate them to a Hangzhou clinician:
    ``edge``: a bureau visit at the Hangzhou hospital on the first day of the window;
    ``before``: one the day before it; ``elsewhere``: at another hospital;
    ``other_bureau``: at the Hangzhou hospital, recorded by the Shandong bureau;
    ``own_result``: only a result the Hangzhou hospital published itself;
    ``consented``: the person's consent to the Hangzhou hospital (LAB_RESULT, TREATMENT);
    ``consent_other_purpose``, ``consent_expired``, ``consent_other_grantee``: near misses;
    ``stranger``: no fact at all."""
    data = tmp_path_factory.mktemp("relations") / "data"
    data.mkdir()

    async def build() -> dict[str, str]:
        fed = await Federation(data).setup(institutions=False)
        names = [
            "edge",
            "before",
            "elsewhere",
            "other_bureau",
            "own_result",
            "consented",
            "consent_other_purpose",
            "consent_expired",
            "consent_other_grantee",
            "stranger",
            "glass1",
            "glass2",
            "glass3",
        ]
        refs = {n: fed.indexer.person_ref(make_id_number(seq=100 + i)) for i, n in enumerate(names)}
        visit = dict(count=1, with_prescriptions=False)
        await fed.add_visits(refs["edge"], begin=SINCE, **visit)
        await fed.add_visits(refs["before"], begin=SINCE - timedelta(days=1), **visit)
        await fed.add_visits(refs["elsewhere"], institution=OTHER_HOSPITAL, begin=SINCE, **visit)
        await fed.add_visits(
            refs["other_bureau"], source="bureau-370000", insured="370102", begin=SINCE, **visit
        )
        await fed.add_result(refs["own_result"], reported_at=NOW - timedelta(days=1))
        store = ConsentStore(create_source_engine(fed.settings.gateway_spec))
        grants = {
            "consented": (HOSPITAL, Purpose.TREATMENT, NOW + timedelta(days=30)),
            "consent_other_purpose": (HOSPITAL, Purpose.RESEARCH, NOW + timedelta(days=30)),
            "consent_expired": (HOSPITAL, Purpose.TREATMENT, NOW - timedelta(seconds=1)),
            "consent_other_grantee": (OTHER_HOSPITAL, Purpose.TREATMENT, NOW + timedelta(days=30)),
        }
        for name, (grantee, purpose, until) in grants.items():
            await store.grant(
                consent_id=f"c-{name}",
                person_ref=refs[name],
                grantee=grantee,
                data_classes=[DataClass.LAB_RESULT, DataClass.VISIT],
                purpose=purpose,
                valid_from=NOW - timedelta(days=10),
                valid_until=until,
                now=NOW - timedelta(days=10),
            )
        await store._engine.dispose()
        for engine in fed._engines.values():
            await engine.dispose()
        return refs

    refs = asyncio.run(build())
    return data, refs


@pytest.fixture
def world(base, tmp_path) -> tuple[Path, dict[str, str]]:
    data, refs = base
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    return copy, refs


class Caller:
    """One request's context on a copy of the federation."""

    def __init__(self, data: Path) -> None:
        self.settings = Federation(data).settings
        keyring = open_keyring(self.settings, create=False)
        keyring.ensure_source(GATEWAY_KEY_SOURCE)
        self.gateway_engine = create_source_engine(self.settings.gateway_spec)
        self.services = Services(
            registry=SourceRegistry(self.settings.sources),
            cipher=FieldCipher(keyring),
            indexer=BlindIndexer(keyring),
            recognition=RecognitionCatalogue(),
            gateway_engine=self.gateway_engine,
        )

    def context(
        self,
        role: Role,
        org: str,
        purpose: Purpose = Purpose.TREATMENT,
        *,
        person: str | None = None,
        reason: Reason | None = None,
        sub: str = "dr-1",
        now: datetime = NOW,
    ) -> RequestContext:
        principal = Principal(
            sub=sub,
            role=role,
            org=org,
            issuer="https://idp.test",
            purposes=frozenset({purpose}),
            person_ref=person,
            token_id="t-1",
            expires_at=now + timedelta(hours=1),
        )
        return RequestContext(
            services=self.services,
            principal=principal,
            purpose=purpose,
            guard=FieldGuard(principal, purpose, self.services.decider),
            deadline=Deadline(30),
            now=now,
            break_glass_reason=reason,
        )

    async def close(self) -> None:
        await self.services.registry.dispose()
        await self.gateway_engine.dispose()


@pytest.fixture
async def caller(world):
    made = Caller(world[0])
    yield made
    await made.close()


async def related(ctx: RequestContext, refs: list[str], data_class: str | None = None):
    await ctx.prepare_relations(refs)
    return [ctx.relation_to(ref, None, data_class) for ref in refs]


# -- treating: a bureau's visit at the caller's institution, within the window --------------------


def test_the_window_starts_its_length_in_days_before_now(caller):
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    assert treating_since(ctx) == SINCE == date(2026, 6, 4)


async def test_a_visit_on_the_first_day_of_the_window_makes_the_institution_treating(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    assert await related(ctx, [refs["edge"], refs["before"]]) == [Relation.TREATING, Relation.NONE]


async def test_the_window_moves_with_the_clock(caller, world):
    """A day later the edge visit is out of the window; a day earlier the older one is in."""
    _, refs = world
    later = caller.context(Role.CLINICIAN, HOSPITAL, now=NOW + timedelta(days=1))
    assert await related(later, [refs["edge"]]) == [Relation.NONE]
    earlier = caller.context(Role.CLINICIAN, HOSPITAL, now=NOW - timedelta(days=1))
    assert await related(earlier, [refs["before"], refs["edge"]]) == [
        Relation.TREATING,
        Relation.TREATING,
    ]


async def test_a_visit_elsewhere_treats_there_not_here(caller, world):
    _, refs = world
    here = caller.context(Role.CLINICIAN, HOSPITAL)
    assert await related(here, [refs["elsewhere"]]) == [Relation.NONE]
    there = caller.context(Role.CLINICIAN, OTHER_HOSPITAL)
    assert await related(there, [refs["elsewhere"], refs["edge"]]) == [
        Relation.TREATING,
        Relation.NONE,
    ]


async def test_every_bureau_is_asked(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    assert await related(ctx, [refs["other_bureau"]]) == [Relation.TREATING]


async def test_a_result_the_hospital_published_itself_makes_no_relation(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    assert await related(ctx, [refs["own_result"]]) == [Relation.NONE]


async def test_a_pharmacist_at_the_hospital_is_treating_too(caller, world):
    _, refs = world
    ctx = caller.context(Role.PHARMACIST, HOSPITAL)
    assert await related(ctx, [refs["edge"]]) == [Relation.TREATING]


async def test_callers_who_are_no_institution_get_no_person_relation(caller, world):
    _, refs = world
    for role, org in [
        (Role.CLINICIAN, "330106"),  # not an institution code
        (Role.RESEARCHER, HOSPITAL),  # an institution, but not a role that treats
        (Role.CLINICIAN, "H3301060000"),  # one digit short
        (Role.CLINICIAN, "X33010600001"),
    ]:
        ctx = caller.context(role, org)
        assert await related(ctx, [refs["edge"], refs["consented"]], "lab_result") == [
            Relation.NONE,
            Relation.NONE,
        ], (role, org)


async def test_a_bureau_that_cannot_answer_proves_no_relation(caller, world):
    data, refs = world
    (data / "sources" / "bureau-330000.db").unlink()
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    assert await related(ctx, [refs["edge"], refs["other_bureau"]]) == [
        Relation.NONE,
        Relation.TREATING,  # the other bureau still answers
    ]
    assert "bureau-330000" in ctx.failures


# -- consent: the person's own grant, per class, grantee, purpose and period ----------------------


async def test_a_consent_relates_its_grantee_for_its_classes_only(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    await ctx.prepare_relations([refs["consented"]])
    assert ctx.relation_to(refs["consented"], None, "lab_result") is Relation.CONSENTED
    assert ctx.relation_to(refs["consented"], None, "visit") is Relation.CONSENTED
    assert ctx.relation_to(refs["consented"], None, "identity") is Relation.NONE
    assert ctx.relation_to(refs["consented"], None, None) is Relation.NONE


async def test_a_consent_for_another_purpose_grantee_or_an_ended_period_relates_nobody(
    caller, world
):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    misses = [refs["consent_other_purpose"], refs["consent_expired"], refs["consent_other_grantee"]]
    assert await related(ctx, misses, "lab_result") == [Relation.NONE] * 3
    research = caller.context(Role.CLINICIAN, HOSPITAL, Purpose.RESEARCH)
    assert await related(research, [refs["consent_other_purpose"]], "lab_result") == [
        Relation.CONSENTED
    ]
    jinan = caller.context(Role.CLINICIAN, OTHER_HOSPITAL)
    assert await related(jinan, [refs["consent_other_grantee"]], "lab_result") == [
        Relation.CONSENTED
    ]
    # The last second of the expired consent's period, and the first one after it.
    before = caller.context(Role.CLINICIAN, HOSPITAL, now=NOW - timedelta(seconds=2))
    assert await related(before, [refs["consent_expired"]], "lab_result") == [Relation.CONSENTED]


async def test_without_a_consent_store_nobody_is_consented(caller, world):
    _, refs = world
    caller.services.gateway_engine = None
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    assert await related(ctx, [refs["consented"]], "lab_result") == [Relation.NONE]


async def test_a_consent_store_that_fails_consents_nobody(caller, world):
    data, refs = world
    await caller.gateway_engine.dispose()
    (data / "gateway.db").unlink()
    (data / "gateway.db").mkdir()  # no database can be opened there
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    assert await related(ctx, [refs["consented"], refs["edge"]], "lab_result") == [
        Relation.NONE,
        Relation.TREATING,  # a failed consent lookup takes nothing else away
    ]


# -- break-glass: a clinician's EMERGENCY with a reason, counted ---------------------------------


async def test_break_glass_relates_the_unrelated_in_an_emergency_and_is_counted(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL, Purpose.EMERGENCY, reason=REASON)
    got = await related(ctx, [refs["glass1"], refs["edge"]])
    assert got == [Relation.BREAK_GLASS, Relation.TREATING]  # treating needs no glass
    relations = ctx.relations
    assert relations.break_glass_granted == {refs["glass1"]}
    assert relations.break_glass_opened == {refs["glass1"]}
    assert relations.break_glass_refused == set()
    assert relations.break_glass_limit == 5
    assert relations.break_glass_reason_text is not None
    assert b"unconscious" not in relations.break_glass_reason_text  # stored encrypted


async def test_a_consented_person_needs_no_glass_for_the_consented_class(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL, Purpose.EMERGENCY, reason=REASON)
    await ctx.prepare_relations([refs["consent_other_purpose"]])
    # That consent is for RESEARCH: in an emergency, the glass is broken for the person.
    assert ctx.relations.break_glass_granted == {refs["consent_other_purpose"]}


async def test_break_glass_only_for_a_clinician_in_an_emergency(caller, world):
    _, refs = world
    for role, purpose in [
        (Role.CLINICIAN, Purpose.TREATMENT),
        (Role.PHARMACIST, Purpose.EMERGENCY),
    ]:
        ctx = caller.context(role, HOSPITAL, purpose, reason=REASON)
        assert await related(ctx, [refs["glass2"]]) == [Relation.NONE], (role, purpose)
        assert ctx.relations.break_glass_granted == set()
        assert ctx.relations.break_glass_limit is None  # the ledger was not even asked


async def test_break_glass_without_a_reason_is_refused_as_such(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL, Purpose.EMERGENCY, reason=None)
    assert await related(ctx, [refs["glass1"]]) == [Relation.NONE]
    assert ctx.relations.break_glass_refused == {refs["glass1"]}
    assert ctx.relations.break_glass_refused_because == REASON_REQUIRED


async def test_break_glass_without_a_ledger_is_refused_as_unavailable(caller, world):
    _, refs = world
    caller.services.gateway_engine = None
    ctx = caller.context(Role.CLINICIAN, HOSPITAL, Purpose.EMERGENCY, reason=REASON)
    assert await related(ctx, [refs["glass1"]]) == [Relation.NONE]
    assert ctx.relations.break_glass_refused_because == UNAVAILABLE


async def test_a_ledger_that_fails_refuses_every_person(caller, world):
    data, refs = world
    await caller.gateway_engine.dispose()
    (data / "gateway.db").unlink()
    (data / "gateway.db").mkdir()
    ctx = caller.context(Role.CLINICIAN, HOSPITAL, Purpose.EMERGENCY, reason=REASON)
    assert await related(ctx, [refs["glass1"], refs["glass2"]]) == [Relation.NONE] * 2
    assert ctx.relations.break_glass_refused == {refs["glass1"], refs["glass2"]}
    assert ctx.relations.break_glass_refused_because == UNAVAILABLE


async def test_break_glass_past_the_daily_limit_is_refused_with_the_limit(caller, world):
    _, refs = world
    strangers = [refs[n] for n in ("stranger", "glass1", "glass2", "glass3", "before", "elsewhere")]
    ctx = caller.context(Role.CLINICIAN, HOSPITAL, Purpose.EMERGENCY, reason=REASON)
    await ctx.prepare_relations(strangers)
    relations = ctx.relations
    assert len(relations.break_glass_granted) == 5 and len(relations.break_glass_refused) == 1
    assert relations.break_glass_refused_because == "BREAK_GLASS_CLINICIAN_LIMIT"
    refused = next(iter(relations.break_glass_refused))
    assert ctx.relation_to(refused, None) is Relation.NONE


# -- self, pharmacy, region: from the caller's verified identity and the row's own columns --------


async def test_a_patient_is_self_only_to_their_own_record(caller, world):
    _, refs = world
    ctx = caller.context(Role.PATIENT, "330106", Purpose.PATIENT_ACCESS, person=refs["edge"])
    assert await related(ctx, [refs["edge"], refs["before"]]) == [Relation.SELF, Relation.NONE]
    assert ctx.relation_to(None, None) is Relation.NONE


async def test_a_person_link_in_another_roles_token_is_not_self(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, OTHER_HOSPITAL, person=refs["edge"])
    assert await related(ctx, [refs["edge"]]) == [Relation.NONE]


async def test_self_comes_before_every_other_relation(caller, world):
    _, refs = world
    ctx = caller.context(Role.PATIENT, HOSPITAL, person=refs["edge"])
    assert ctx.relation_to(refs["edge"], {"circulated_to": HOSPITAL}) is Relation.SELF


async def test_a_pharmacy_relates_to_the_rows_sent_to_it(caller):
    ctx = caller.context(Role.PHARMACIST, PHARMACY, Purpose.SETTLEMENT)
    assert ctx.relation_to(None, {"circulated_to": PHARMACY}) is Relation.PHARMACY
    assert ctx.relation_to(None, {"pharmacy_code": PHARMACY}) is Relation.PHARMACY
    assert ctx.relation_to(None, {"circulated_to": "P33010600002"}) is Relation.NONE
    assert ctx.relation_to(None, {}) is Relation.NONE
    assert ctx.relation_to(None, None) is Relation.NONE
    # A pharmacist at a hospital is not a pharmacy; a clinician never is.
    hospital = caller.context(Role.PHARMACIST, HOSPITAL)
    assert hospital.relation_to(None, {"circulated_to": HOSPITAL}) is Relation.NONE
    clinician = caller.context(Role.CLINICIAN, PHARMACY)
    assert clinician.relation_to(None, {"circulated_to": PHARMACY}) is Relation.NONE


async def test_a_pharmacy_that_is_treating_is_treating_first(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    await ctx.prepare_relations([refs["edge"]])
    assert ctx.relation_to(refs["edge"], {"circulated_to": HOSPITAL}) is Relation.TREATING


@pytest.mark.parametrize(
    ("org", "row", "expected"),
    [
        ("330100", {"insuplc_admdvs": "330106"}, Relation.REGION),  # a city covers its districts
        ("330100", {"mdtrtarea_admvs": "330106"}, Relation.REGION),
        ("330100", {"pool_admdvs": "330100"}, Relation.REGION),
        ("330100", {"insuplc_admdvs": "330206"}, Relation.NONE),  # another city
        ("330000", {"insuplc_admdvs": "330206"}, Relation.REGION),  # the province covers it
        ("330106", {"insuplc_admdvs": "330106"}, Relation.REGION),  # a district itself
        ("330106", {"insuplc_admdvs": "330107"}, Relation.NONE),
        ("330106", {"institution_code": "H33010600001"}, Relation.REGION),  # all six digits
        ("330106", {"institution_code": "H33010700001"}, Relation.NONE),
        ("330100", {"institution_code": "H33010600001"}, Relation.REGION),  # by its region
        ("330100", {"institution_code": "H37010200003"}, Relation.NONE),
        ("330100", {"institution_code": "H33"}, Relation.NONE),
        ("330100", {"institution_code": ""}, Relation.NONE),
        ("330100", {"insuplc_admdvs": None, "institution_code": None}, Relation.NONE),
        ("330100", {"insuplc_admdvs": "", "mdtrtarea_admvs": "370102"}, Relation.NONE),
        ("330100", {"insuplc_admdvs": "370102", "mdtrtarea_admvs": "330106"}, Relation.REGION),
        ("100000", {"insuplc_admdvs": "370102"}, Relation.REGION),  # a national body: all
        ("100000", {"institution_code": "H37010200003"}, Relation.REGION),
        ("100000", {}, Relation.NONE),  # a row of no region is in none
        ("33010", {"insuplc_admdvs": "330106"}, Relation.NONE),  # not a region code
    ],
)
async def test_an_agency_relates_to_the_rows_of_its_region(caller, org, row, expected):
    ctx = caller.context(Role.INSURANCE_AGENCY, org, Purpose.FUND_SUPERVISION)
    assert ctx.relation_to(None, {**row, "_source": "bureau-330000"}) is expected


async def test_only_the_agencies_have_a_region(caller):
    row = {"insuplc_admdvs": "330106", "_source": "bureau-330000"}
    for role in (Role.CLINICIAN, Role.RESEARCHER, Role.AUDITOR, Role.PATIENT):
        assert caller.context(role, "330100").relation_to(None, row) is Relation.NONE, role


async def test_the_settlement_centre_relates_only_to_the_platforms_rows(caller):
    ctx = caller.context(Role.SETTLEMENT_CENTER, "330000", Purpose.SETTLEMENT)
    at_platform = {"insuplc_admdvs": "330106", "_source": "platform"}
    assert ctx.relation_to(None, at_platform) is Relation.REGION
    assert ctx.relation_to(None, {**at_platform, "_source": "bureau-330000"}) is Relation.NONE
    assert ctx.relation_to(None, {**at_platform, "insuplc_admdvs": "370102"}) is Relation.NONE
    agency = caller.context(Role.INSURANCE_AGENCY, "330000", Purpose.SETTLEMENT)
    assert agency.relation_to(None, {**at_platform, "_source": "bureau-330000"}) is Relation.REGION


async def test_a_person_relation_comes_before_the_row_relation(caller, world):
    _, refs = world
    ctx = caller.context(Role.PHARMACIST, PHARMACY, Purpose.EMERGENCY)
    assert ctx.relation_to(refs["edge"], {"circulated_to": PHARMACY}) is Relation.PHARMACY


def test_a_person_not_prepared_has_no_relation(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    assert ctx.relation_to(refs["edge"], None) is Relation.NONE
    assert ctx.relations.relation(refs["edge"], None, "lab_result") is Relation.NONE


# -- person_decides: when a list's page may be cut in SQL ---------------------------------------


async def test_person_decides_for_callers_without_row_relations(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    assert ctx.relations.person_decides(refs["stranger"]) is True
    assert ctx.relations.person_decides(None) is True


async def test_person_decides_for_a_region_only_when_a_person_relation_holds(caller, world):
    _, refs = world
    agency = caller.context(Role.INSURANCE_AGENCY, "330100", Purpose.FUND_SUPERVISION)
    assert agency.relations.person_decides(refs["stranger"]) is False
    assert agency.relations.person_decides(None) is False
    pharmacy = caller.context(Role.PHARMACIST, PHARMACY, Purpose.SETTLEMENT)
    assert pharmacy.relations.person_decides(refs["stranger"]) is False
    # A pharmacy's consented person: decided for the class consented only.
    relations = pharmacy.relations
    relations._persons[refs["consented"]] = PersonRelation(consented=frozenset({"lab_result"}))
    assert relations.person_decides(refs["consented"], "lab_result") is True
    assert relations.person_decides(refs["consented"], "identity") is False
    assert relations.person_decides(refs["consented"]) is False
    relations._persons[refs["edge"]] = PersonRelation(treating=True)
    assert relations.person_decides(refs["edge"]) is True
    relations._persons[refs["glass1"]] = PersonRelation(break_glass=True)
    assert relations.person_decides(refs["glass1"]) is True
    assert relations._persons.get(refs["stranger"], NO_RELATION) == NO_RELATION


async def test_person_decides_for_the_patient_themself(caller, world):
    _, refs = world
    # A patient has no row relation, so every person decides; the rule for self is the
    # first of the branch the pharmacy and region take, pinned through a pharmacist's view.
    pharmacy = caller.context(Role.PHARMACIST, PHARMACY, Purpose.SETTLEMENT)
    pharmacy.relations.self_ref = refs["edge"]
    assert pharmacy.relations.person_decides(refs["edge"]) is True
    assert pharmacy.relations.person_decides(refs["before"]) is False


# -- prepare: one batch, fail closed ------------------------------------------------------------


async def test_prepare_batches_persons_once_and_skips_the_prepared(caller, world):
    _, refs = world
    ctx = caller.context(Role.CLINICIAN, HOSPITAL)
    asked: list[list[str]] = []
    relations = ctx.relations
    real = relations._load

    async def counting(keys):
        asked.append(list(keys))
        return await real(keys)

    relations._loader.load_fn = counting
    await relations.prepare([refs["edge"], None, refs["edge"], refs["stranger"]])
    await relations.prepare([refs["edge"], refs["before"]])
    assert asked == [[refs["edge"], refs["stranger"]], [refs["before"]]]
    assert ctx.relation_to(refs["edge"], None) is Relation.TREATING


# -- row_scope: the SQL a regional caller's multi-person list is cut by -------------------------


async def _visible(ctx: RequestContext, source_name: str) -> set[tuple[str, str]]:
    """(insured region, treatment region) of the rows the caller's scope keeps."""
    source = ctx.registry.get(source_name)
    table = bureau.Visit.__table__ if source.spec.kind == "bureau" else platform.Filing.__table__
    stmt = select(table.c.insuplc_admdvs, table.c.mdtrtarea_admvs).where(
        *ctx.relations.row_scope(source, table)
    )
    async with source.engine.connect() as conn:
        return {(r[0], r[1]) for r in await conn.execute(stmt)}


def _agency(caller: Caller, org: str) -> RequestContext:
    return caller.context(Role.INSURANCE_AGENCY, org, Purpose.FUND_SUPERVISION)


async def test_row_scope_keeps_a_regional_list_to_its_region(caller):
    clinician = caller.context(Role.CLINICIAN, HOSPITAL)
    shandong_rows = await _visible(clinician, "bureau-370000")  # a clinician's list is not cut
    zhejiang_rows = await _visible(clinician, "bureau-330000")
    # A Shandong person treated in Hangzhou; Zhejiang persons treated in Hangzhou and Jinan.
    assert shandong_rows == {("370102", "330106")}
    assert zhejiang_rows == {("330106", "330106"), ("330106", "370102")}
    # Each agency keeps the rows insured or treated in its region, by either column.
    assert await _visible(_agency(caller, "370000"), "bureau-370000") == shandong_rows
    assert await _visible(_agency(caller, "330000"), "bureau-370000") == shandong_rows
    assert await _visible(_agency(caller, "370000"), "bureau-330000") == {("330106", "370102")}
    assert await _visible(_agency(caller, "330100"), "bureau-330000") == zhejiang_rows
    assert await _visible(_agency(caller, "220000"), "bureau-330000") == set()
    assert await _visible(_agency(caller, "220000"), "bureau-370000") == set()
    national = _agency(caller, "100000")
    visits = bureau.Visit.__table__
    assert national.relations.row_scope(caller.services.registry.get("bureau-370000"), visits) == []
    assert await _visible(national, "bureau-330000") == zhejiang_rows


async def test_row_scope_of_the_settlement_centre_is_the_platform_only(caller):
    centre = caller.context(Role.SETTLEMENT_CENTER, "370000", Purpose.SETTLEMENT)
    assert await _visible(centre, "bureau-370000") == set()
    scope = centre.relations.row_scope(
        caller.services.registry.get("platform"), platform.Filing.__table__
    )
    assert len(scope) == 1


async def test_row_scope_of_a_table_without_region_columns_is_uncut(caller):
    agency = caller.context(Role.INSURANCE_AGENCY, "330000", Purpose.FUND_SUPERVISION)
    source = caller.services.registry.get("bureau-330000")
    assert agency.relations.row_scope(source, bureau.PrescriptionItem.__table__) == []


def test_a_person_relation_cannot_be_changed_in_place():
    """Relations are shared by every resolver of a request: none may alter another's."""
    relation = PersonRelation(treating=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        relation.treating = True  # type: ignore[misc]
    assert PersonRelation() == NO_RELATION and not NO_RELATION.treating


def test_settings_are_the_shipped_policys():
    """The constants above are the shipped policy's: the window, the daily limit."""
    from security.policy import default_policy

    policy = default_policy()
    assert policy.treating_window_days == WINDOW
    assert policy.break_glass_persons_per_day == 5
    assert dataclasses.is_dataclass(PersonRelation)
