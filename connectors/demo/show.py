"""``medfed demo show``: pick demo persons worth querying and describe them.

Features are found with a few set queries per source (who moved, who was treated in another
province, who has results in several hospitals, who is chronically ill or used an internet
revisit); persons are then chosen to cover every feature, most-featured first, and only those
few are decrypted. Works on any configured backend.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.demo.regions import PROVINCES
from connectors.sources import SourceSpec
from connectors.sql.engine import create_source_engine
from connectors.sql.models import bureau, hospital, pharmacy, platform
from security.crypto import FieldCipher, KeyRing

TAGS = (
    "moved provinces",
    "cross-province care",
    "results in several hospitals",
    "chronic disease",
    "internet revisit",
)


async def _refs(engine: AsyncEngine, query) -> list:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def _counts(engine: AsyncEngine, column, refs: list[str]) -> dict[str, int]:
    query = select(column, func.count()).where(column.in_(refs)).group_by(column)
    return {ref: n for ref, n in await _refs(engine, query)}


async def interesting_persons(
    specs: list[SourceSpec], keyring: KeyRing, limit: int = 8
) -> list[dict]:
    engines = {spec.name: create_source_engine(spec) for spec in specs}
    try:
        return await _interesting(specs, engines, keyring, limit)
    finally:
        for engine in engines.values():
            await engine.dispose()


async def _interesting(
    specs: list[SourceSpec], engines: dict[str, AsyncEngine], keyring: KeyRing, limit: int
) -> list[dict]:
    of = defaultdict(list)
    for spec in specs:
        of[spec.kind].append(spec)
    tags: dict[str, set[str]] = defaultdict(set)
    insured_in: dict[str, list[str]] = defaultdict(list)
    order: dict[str, int] = {}  # person index (from psn_no): a stable tie-break across builds
    P, V = bureau.Person, bureau.Visit
    for spec in of["bureau"]:
        engine = engines[spec.name]
        for ref, psn_no in await _refs(engine, select(P.person_ref, P.psn_no)):
            insured_in[ref].append(spec.name)
            order[ref] = int(psn_no[-10:]) if psn_no[-10:].isdigit() else 0
        for vtype, tag in (
            ("CHRONIC_OUTPATIENT", "chronic disease"),
            ("INTERNET_REVISIT", "internet revisit"),
        ):
            query = select(V.person_ref).distinct().where(V.visit_type == vtype)
            tags[tag].update(ref for (ref,) in await _refs(engine, query))
    for ref, bureaus in insured_in.items():
        if len(bureaus) > 1:
            tags["moved provinces"].add(ref)
    for spec in of["platform"]:
        query = select(platform.CrossSettlement.person_ref).distinct()
        tags["cross-province care"].update(r for (r,) in await _refs(engines[spec.name], query))
    hospitals_of: dict[str, int] = defaultdict(int)
    for spec in of["hospital"]:
        query = select(hospital.TestResult.person_ref).distinct()
        for (ref,) in await _refs(engines[spec.name], query):
            hospitals_of[ref] += 1
    tags["results in several hospitals"] = {r for r, n in hospitals_of.items() if n > 1}

    def features(ref: str) -> list[str]:
        return [t for t in TAGS if ref in tags[t]]

    ranked = sorted(insured_in, key=lambda r: (-len(features(r)), order[r]))
    chosen: list[str] = []
    for tag in TAGS:  # first someone for every feature, then the most-featured
        pick = next((r for r in ranked if r in tags[tag] and r not in chosen), None)
        if pick is not None and len(chosen) < limit:
            chosen.append(pick)
    chosen += [r for r in ranked if r not in chosen][: limit - len(chosen)]
    chosen.sort(key=lambda r: (-len(features(r)), order[r]))
    return [
        await _describe(ref, of, engines, keyring, insured_in[ref], features(ref)) for ref in chosen
    ]


async def _describe(
    ref: str,
    of: dict[str, list[SourceSpec]],
    engines: dict[str, AsyncEngine],
    keyring: KeyRing,
    bureaus: list[str],
    features: list[str],
) -> dict:
    cipher = FieldCipher(keyring)
    counts: dict[str, int] = defaultdict(int)
    provinces, treated, hospitals_with_results = [], set(), []
    plain: dict[str, str] = {}
    for spec in of["bureau"]:
        engine = engines[spec.name]
        async with engine.connect() as conn:
            P, E = bureau.Person, bureau.Enrollment
            row = (
                await conn.execute(
                    select(P.psn_no, P.name_enc, P.id_number_enc, E.begin_date, E.status)
                    .join(E, E.psn_no == P.psn_no)
                    .where(P.person_ref == ref)
                )
            ).first()
        if row is not None:
            provinces.append((row.begin_date, str(spec.region)))
            if row.status == "ACTIVE" or not plain:  # the current bureau's record wins
                plain = {
                    column: cipher.decrypt(
                        getattr(row, column),
                        source=spec.name,
                        table="persons",
                        column=column,
                        row_key=row.psn_no,
                    )
                    for column in ("name_enc", "id_number_enc")
                }
        for model, key in (
            (bureau.Enrollment, "enrollments"),
            (bureau.Visit, "visits"),
            (bureau.Settlement, "settlements"),
        ):
            found = (await _counts(engine, model.person_ref, [ref])).get(ref, 0)
            counts[key] += found
            if key == "visits" and found:
                treated.add(str(spec.region))
    for spec in of["hospital"]:
        found = await _counts(engines[spec.name], hospital.TestResult.person_ref, [ref])
        if found.get(ref):
            counts["results"] += found[ref]
            hospitals_with_results.append(str(spec.institution))
    for spec in of["platform"]:
        engine = engines[spec.name]
        counts["crossProvinceSettlements"] += (
            await _counts(engine, platform.CrossSettlement.person_ref, [ref])
        ).get(ref, 0)
        counts["filings"] += (await _counts(engine, platform.Filing.person_ref, [ref])).get(ref, 0)
    for spec in of["pharmacy"]:
        counts["dispensings"] += (
            await _counts(engines[spec.name], pharmacy.Dispensing.person_ref, [ref])
        ).get(ref, 0)
    keys = (
        "enrollments",
        "visits",
        "results",
        "settlements",
        "crossProvinceSettlements",
        "filings",
        "dispensings",
    )
    return {
        "personId": ref,
        "idNumber": plain.get("id_number_enc"),
        "name": plain.get("name_enc"),
        "provinces": [PROVINCES[p].name if p in PROVINCES else p for _, p in sorted(provinces)],
        "insuredIn": [p for _, p in sorted(provinces)],
        "treatedIn": sorted(treated),
        "hospitalsWithResults": hospitals_with_results,
        "counts": {k: counts[k] for k in keys},
        "interesting": features,
    }
