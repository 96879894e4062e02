"""Rows for the statistics tests: settlements written straight to a bureau, and listeners that
see every statement each source runs (its SQL and the columns it returned)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event

from connectors.sql.models import bureau

_serial = itertools.count(1)


async def add_settlement(
    fed,
    ref: str,
    mdtrt_id: str,
    *,
    when: datetime,
    total_fen: int,
    source: str = "bureau-330000",
    insured: str = "330106",
    institution: str = "H33010600001",
    med_type: str = "OUTPATIENT",
) -> str:
    sid = f"ST{next(_serial):010d}"
    fund = total_fen * 7 // 10
    await fed.insert(
        source,
        bureau.Settlement,
        [
            dict(
                setl_id=sid,
                mdtrt_id=mdtrt_id,
                person_ref=ref,
                institution_code=institution,
                med_type=med_type,
                setl_time=when,
                insuplc_admdvs=insured,
                mdtrtarea_admvs=institution[1:7],
                total_fen=total_fen,
                in_policy_fen=total_fen,
                fund_pay_fen=fund,
                acct_pay_fen=0,
                cash_pay_fen=total_fen - fund,
                cross_province=False,
                clearing_status="CLEARED",
            )
        ],
    )
    return sid


@dataclass
class Seen:
    statements: dict[str, list[str]] = field(default_factory=dict)
    columns: dict[str, list[list[str]]] = field(default_factory=dict)
    rows: dict[str, list[tuple]] = field(default_factory=dict)


def watch(registry) -> Seen:
    """Record, per source, each statement's SQL and its result columns."""
    seen = Seen()
    for source in registry:
        name = source.name

        def before(_conn, _cursor, statement, *_a, name=name):
            seen.statements.setdefault(name, []).append(statement)

        def after(_conn, cursor, *_a, name=name):
            described = [d[0] for d in (cursor.description or ())]
            seen.columns.setdefault(name, []).append(described)

        event.listen(source.engine.sync_engine, "before_cursor_execute", before)
        event.listen(source.engine.sync_engine, "after_cursor_execute", after)
    return seen
