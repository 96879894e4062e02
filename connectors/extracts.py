"""The rows a de-identified extract is made from, read at the bureaus.

One statement per bureau: its visits joined to its insured persons and the settlement of
each visit. These are personal rows, read only for an approved extract job (never for a
statistic); the producer generalises and suppresses them before anything is written, and
drops the federation pseudonym and the encrypted birth date once used.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from connectors.fanout import Deadline, fan_out
from connectors.registry import Source
from connectors.sql.models import bureau
from connectors.sql.queries import Row

CHUNK = 500


async def visit_rows(sources: Sequence[Source], deadline: Deadline):
    v, p, s = (bureau.Visit.__table__, bureau.Person.__table__, bureau.Settlement.__table__)
    stmt = (
        select(
            v.c.mdtrt_id,
            v.c.person_ref,
            v.c.visit_type,
            v.c.begin_date,
            v.c.diagnosis_codes,
            v.c.institution_code,
            v.c.mdtrtarea_admvs,
            p.c.psn_no,
            p.c.birth_date_enc,
            p.c.gender,
            p.c.insuplc_admdvs,
            s.c.total_fen,
            s.c.fund_pay_fen,
        )
        .select_from(
            v.join(p, p.c.person_ref == v.c.person_ref).outerjoin(s, s.c.mdtrt_id == v.c.mdtrt_id)
        )
        .order_by(v.c.mdtrt_id)
    )

    async def one(source: Source) -> list[Row]:
        async with source.engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(stmt)]
        for row in rows:
            row["_source"] = source.name
        return rows

    return await fan_out([x for x in sources if x.spec.kind == "bureau"], one, deadline)


async def drug_codes(source: Source, visits: Sequence[str]) -> dict[str, set[str]]:
    """The drug codes prescribed at each of ``visits`` (at most a few statements)."""
    rx, items = bureau.Prescription.__table__, bureau.PrescriptionItem.__table__
    out: dict[str, set[str]] = {}
    ids = list(dict.fromkeys(visits))
    for start in range(0, len(ids), CHUNK):
        stmt = (
            select(rx.c.mdtrt_id, items.c.drug_code)
            .select_from(rx.join(items, items.c.rx_id == rx.c.rx_id))
            .where(rx.c.mdtrt_id.in_(ids[start : start + CHUNK]))
        )
        async with source.engine.connect() as conn:
            for mdtrt_id, code in await conn.execute(stmt):
                out.setdefault(mdtrt_id, set()).add(code)
    return out
