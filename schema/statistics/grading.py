"""One statistics question, answered at the caller's grade.

The grade comes from the policy file (``security.policy.grades``); the partial aggregates
from the sources (``connectors.statistics``); suppression and noise from
``security.privacy``. The answer is a plain dict (stored as is by the privacy ledger, so a
repeated question is answered with the very same noisy figures) that the GraphQL types
render.

EXACT       the cube of the requested dimensions (every cell and every margin), exact;
SUPPRESSED  the cube of *the grade's* dimensions is computed and suppressed once, and the
            requested level and slice are shown from it (see ``security.privacy.suppression``
            for why it is never the requested cube alone);
DP          every cell of the public domain of the requested dimensions (empty ones too),
            each measure released through OpenDP and charged to the partner's budget before
            it is returned.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import product
from typing import Any

import orjson
from graphql import GraphQLError
from sqlalchemy import select

from connectors.fanout import Deadline
from connectors.sql.models import directory
from connectors.statistics.catalogue import STATISTICS, Context, Institutions, Statistic
from connectors.statistics.plan import COUNT, PERSONS, Bounds
from connectors.statistics.run import Cube, Level, Query, Scope, all_levels, run
from schema import times
from schema.errors import bad_input, forbidden
from schema.relations import REGION_CODE, REGION_ROLES, region_prefix
from schema.statistics.cubes import CubeCache
from security.audit.events import note_open_data, privacy_spend_event
from security.identity.roles import Role
from security.policy.grades import MAX_SUPPRESSED_DIMENSIONS, Grade, Opening, grade_for
from security.privacy import dp
from security.privacy.ledger import BudgetExhausted, PrivacyLedger, period_end, period_of
from security.privacy.suppression import Pattern, suppress

log = logging.getLogger("medfed.statistics")

PRIVACY_BUDGET_EXHAUSTED = "PRIVACY_BUDGET_EXHAUSTED"
MAX_GROUP_BY = 4
MAX_DP_CELLS = 5000
MAX_DP_MONTHS = 60
MONTH_RE = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")
DIRECTORY_TTL = 60.0
DIRECTORY_KEY = "statistics.directory"
CUBE_CACHE = "statistics.cubes"
CUBE_TTL = 300.0  # seconds a SUPPRESSED grade's cube (and so its pattern) is reused
CUBE_REFRESH_AFTER = 240.0  # a question after this recomputes it in the background
RECORDER = "audit"  # the audit recorder in Services.extras (see gateway.audit_http)


@dataclass(frozen=True)
class Ask:
    """A statistics question as the caller put it."""

    statistic: str
    group_by: tuple[str, ...]
    equals: dict[str, str] = field(default_factory=dict)
    months: tuple[str, str] | None = None
    region: str | None = None
    epsilon: float | None = None
    measures: tuple[str, ...] | None = None  # API names; None: all of the statistic's


def base_measures(stat: Statistic) -> dict[str, str]:
    """API name -> internal name of the measures a source computes (shares are derived)."""
    out = {_camel(stat.count_name): COUNT, PERSONS: PERSONS}
    out.update({_camel(s): s for s in stat.sums})
    return out


def _wanted(stat: Statistic, ask: Ask) -> list[str]:
    """The internal measures to release: those asked for, and what asked shares need."""
    names = base_measures(stat)
    if ask.measures is None:
        return list(names.values())
    wanted = set()
    for name in ask.measures:
        if name == "fundShare":
            wanted |= {"fund_payment", "total_cost"}
        elif name == "recognizedShare":
            wanted |= {"recognized", COUNT}
        else:
            wanted.add(names[name])
    return [m for m in names.values() if m in wanted]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


# -- validation ------------------------------------------------------------------------------
def _validate(stat: Statistic, ask: Ask) -> None:
    problems: list[dict] = []
    seen = set()
    for d in ask.group_by:
        if d in seen:
            problems.append({"path": ["groupBy"], "reason": f"{d} is given twice"})
        seen.add(d)
    if len(ask.group_by) > MAX_GROUP_BY:
        problems.append(
            {"path": ["groupBy"], "reason": f"at most {MAX_GROUP_BY} dimensions at once"}
        )
    for d, v in ask.equals.items():
        if d not in stat.dimensions:
            problems.append({"path": ["filter", "equals"], "reason": f"unknown dimension {d}"})
        elif not isinstance(v, str) or not 1 <= len(v) <= 24:
            problems.append({"path": ["filter", "equals"], "reason": f"bad value for {d}"})
    if ask.months is not None:
        first, last = ask.months
        for name, value in (("monthFrom", first), ("monthTo", last)):
            if not MONTH_RE.match(value):
                problems.append({"path": ["filter", name], "reason": "must be YYYY-MM"})
        if not problems and first > last:
            problems.append({"path": ["filter", "monthTo"], "reason": "is before monthFrom"})
    if ask.measures is not None:
        known = set(base_measures(stat))
        if "fund_payment" in stat.sums and "total_cost" in stat.sums:
            known.add("fundShare")
        if "recognized" in stat.sums:
            known.add("recognizedShare")
        for name in ask.measures:
            if name not in known:
                problems.append(
                    {
                        "path": ["measures"],
                        "reason": f"unknown measure {name} (one of {', '.join(sorted(known))})",
                    }
                )
        if not ask.measures:
            problems.append({"path": ["measures"], "reason": "name at least one measure"})
    if ask.region is not None and not REGION_CODE.match(ask.region):
        problems.append({"path": ["filter", "region"], "reason": "must be a 6-digit region code"})
    if problems:
        raise bad_input("; ".join(p["reason"] for p in problems), problems)


def _months_between(first: str, last: str) -> tuple[str, ...]:
    year, month = (int(p) for p in first.split("-"))
    out = []
    while f"{year:04d}-{month:02d}" <= last and len(out) <= MAX_DP_MONTHS:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(out)


# -- the caller's region and grade ----------------------------------------------------------
def _confinement(ctx: Any, ask: Ask) -> tuple[bool, Scope]:
    """Whether the request is confined to the caller's own region, and the rows' scope."""
    principal = ctx.principal
    if principal.role is Role.SETTLEMENT_CENTER:
        prefix = region_prefix(ask.region) if ask.region else None
        return True, Scope(prefix=prefix, platform_only=True)
    if ask.region is None:
        return False, Scope()
    wanted = region_prefix(ask.region)
    own: str | None = None
    if principal.role in REGION_ROLES and REGION_CODE.match(principal.org):
        national = principal.org in ctx.services.policy.national_orgs
        own = "" if national else region_prefix(principal.org)
    return (own is not None and wanted.startswith(own)), Scope(prefix=wanted)


def _grade(ctx: Any, stat: Statistic, ask: Ask, confined: bool) -> Grade | None:
    if not stat.personal:
        return None  # public data (the directory): exact for every caller
    found = grade_for(
        ctx.services.policy.grades, ctx.principal.role, ctx.purpose, stat.name, confined
    )
    if found is None:
        raise forbidden(
            f"no statistics grade opens {stat.name} to role {ctx.principal.role.value} "
            f"for purpose {ctx.purpose.value}"
        )
    asked = set(ask.group_by) | set(ask.equals)
    if not found.allows(sorted(asked)):
        refused = sorted(asked - (found.dimensions or set()))
        raise forbidden(
            f"grade {found.opening.value} ({found.why}) does not open "
            f"dimension{'s' if len(refused) > 1 else ''} {', '.join(refused)}"
        )
    return found


# -- directory snapshot (public) --------------------------------------------------------------
async def institutions(ctx: Any) -> Institutions:
    """Levels of institutions from the directory: one statement, cached for a minute."""
    cached = ctx.services.extras.get(DIRECTORY_KEY)
    if cached is not None and time.monotonic() - cached[0] < DIRECTORY_TTL:
        return cached[1]
    source = ctx.registry.directory()
    if source is None:
        return Institutions({})
    t = directory.Institution.__table__
    async with source.engine.connect() as conn:
        rows = (await conn.execute(select(t.c.code, t.c.level, t.c.internet_hospital))).all()
    found = Institutions(
        {r.code: r.level for r in rows}, frozenset(r.code for r in rows if r.internet_hospital)
    )
    ctx.services.extras[DIRECTORY_KEY] = (time.monotonic(), found)
    return found


async def _context(ctx: Any, months: tuple[str, ...] = ()) -> Context:
    now = ctx.now.astimezone(UTC).replace(tzinfo=None) if ctx.now.tzinfo else ctx.now
    return Context(await institutions(ctx), ctx.services.recognition, now, months)


# -- rendering cells ---------------------------------------------------------------------------
def _exact_measures(stat: Statistic, cell: Any) -> dict[str, dict]:
    out = {
        _camel(stat.count_name): _exact(cell.count),
        PERSONS: {
            "value": cell.persons_high,
            "low": cell.persons_low,
            "high": cell.persons_high,
            "exact": cell.persons_low == cell.persons_high,
        },
    }
    for name, spec in stat.sums.items():
        value = cell.sums[name] / 100 if spec.money else cell.sums[name]
        out[_camel(name)] = _exact(value)
    out.update(_shares(stat, out))
    return out


def _exact(value: float) -> dict:
    return {"value": value, "low": value, "high": value, "exact": True}


def _shares(stat: Statistic, m: dict[str, dict]) -> dict[str, dict]:
    """Derived ratios: post-processing of the released values, at no extra charge. Under DP
    the interval is the ratio of the two 95 % intervals (so it covers at least 90 %)."""
    out = {}
    pairs = []
    if "fund_payment" in stat.sums and "total_cost" in stat.sums:
        pairs.append(("fundShare", "fundPayment", "totalCost"))
    if "recognized" in stat.sums:
        pairs.append(("recognizedShare", "recognized", _camel(stat.count_name)))
    for name, top, bottom in pairs:
        if top not in m or bottom not in m:
            continue
        t, b = m[top], m[bottom]
        if not b["value"] or b["value"] <= 0:
            out[name] = {"value": None, "low": None, "high": None, "exact": b["exact"]}
            continue
        value = t["value"] / b["value"]
        if t["exact"] and b["exact"]:
            out[name] = _exact(round(value, 6))
            continue
        # A share lies in [0, 1]; clipping the noisy ratio is post-processing (no charge).
        value = min(1.0, max(0.0, value))
        low = max(0.0, t["low"] / b["high"]) if b["high"] > 0 else 0.0
        high = min(1.0, t["high"] / b["low"]) if b["low"] > 0 else 1.0
        out[name] = {"value": round(value, 6), "low": round(low, 6), "high": round(high, 6)}
        out[name]["exact"] = False
    return out


def _row(group_by: Sequence[str], level: Level, key: tuple[str, ...]) -> dict[str, Any]:
    values = dict(zip(level, key, strict=True))
    return {
        "key": [{"dimension": d, "value": values.get(d)} for d in group_by],
        "totalOver": [d for d in group_by if d not in values],
    }


def _answer(stat: Statistic, grade: Grade | None, ask: Ask, rows: list, cube: Cube) -> dict:
    if ask.measures is not None:
        keep = set(ask.measures)
        for row in rows:
            row["measures"] = {n: m for n, m in row["measures"].items() if n in keep}
    return {
        "statistic": stat.name,
        "grade": grade.opening.value if grade else Opening.EXACT.value,
        "why": grade.why if grade else "public data",
        "groupBy": list(ask.group_by),
        "rows": rows,
        "sources": cube.answered,
        "k": grade.k if grade and grade.opening is Opening.SUPPRESSED else None,
    }


# -- the three grades ------------------------------------------------------------------------
async def _exact_answer(ctx: Any, stat: Statistic, ask: Ask, grade: Grade | None, scope: Scope):
    query = Query(stat, ask.group_by, all_levels(ask.group_by), ask.equals, ask.months, scope)
    cube = await _run(ctx, query)
    rows = []
    for level in query.levels:
        for key, cell in sorted(cube.cells[level].items()):
            rows.append(
                {
                    **_row(ask.group_by, level, key),
                    "suppressed": False,
                    "measures": _exact_measures(stat, cell),
                }
            )
    return _answer(stat, grade, ask, rows, cube)


async def _suppressed_answer(ctx: Any, stat: Statistic, ask: Ask, grade: Grade):
    if ask.months is not None or ask.region is not None:
        raise bad_input(
            "at a SUPPRESSED grade filter by dimension values only (filter.equals): month "
            "ranges and regions would make tables the suppression pattern does not cover",
            [{"path": ["filter"], "reason": "only equals filters at this grade"}],
        )
    dims = tuple(d for d in stat.dimensions if d in (grade.dimensions or ()))
    if len(dims) > MAX_SUPPRESSED_DIMENSIONS:
        log.error("grade %r opens %d dimensions of %s", grade.why, len(dims), stat.name)
        raise forbidden("this statistics grade is misconfigured; refused")
    query = Query(stat, dims, all_levels(dims))
    cube, pattern = await _cached_pattern(ctx, query, grade.k)
    fixed = dict(ask.equals)
    shown = [d for d in ask.group_by if d not in fixed]
    rows = []
    for size in range(len(shown), -1, -1):
        for subset in _subsets(shown, size):
            level = tuple(d for d in dims if d in subset or d in fixed)
            keys = set(cube.cells.get(level, {})) | {
                k for lv, k in pattern.suppressed if lv == level
            }
            for key in sorted(keys):
                at = dict(zip(level, key, strict=True))
                if any(at.get(d) != v for d, v in fixed.items()):
                    continue
                sub = tuple(d for d in level if d in subset)
                row = _row(ask.group_by, sub, tuple(at[d] for d in sub))
                for entry in row["key"]:
                    if entry["dimension"] in fixed:
                        entry["value"] = fixed[entry["dimension"]]
                row["totalOver"] = [d for d in row["totalOver"] if d not in fixed]
                cell = cube.cells.get(level, {}).get(key)
                if pattern.hides(level, key) or cell is None:
                    rows.append({**row, "suppressed": True, "measures": {}})
                else:
                    rows.append(
                        {**row, "suppressed": False, "measures": _exact_measures(stat, cell)}
                    )
    answer = _answer(stat, grade, ask, rows, cube)
    answer["suppressedCells"] = sum(1 for r in rows if r["suppressed"])
    return answer


def _subsets(items: Sequence[str], size: int):
    from itertools import combinations

    return combinations(items, size)


def question_of(partner: str, ask: Ask, epsilon: float) -> str:
    canonical = {
        "partner": partner,
        "statistic": ask.statistic,
        "groupBy": list(ask.group_by),
        "equals": sorted(ask.equals.items()),
        "months": list(ask.months) if ask.months else None,
        "region": ask.region,
        "epsilon": round(epsilon, 6),
        "measures": sorted(ask.measures) if ask.measures else None,
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def partner_of(ctx: Any, grade: Grade) -> str:
    if grade.partner == "public":
        return "public"
    return f"{ctx.principal.role.value}:{ctx.principal.org}"


def _ledger(ctx: Any) -> PrivacyLedger:
    engine = ctx.services.gateway_engine
    if engine is None:
        raise forbidden("differentially private statistics need the gateway database")
    return PrivacyLedger(engine)


async def _dp_answer(ctx: Any, stat: Statistic, ask: Ask, grade: Grade, scope: Scope):
    epsilon = grade.epsilon if ask.epsilon is None else ask.epsilon
    if not 0 < epsilon <= grade.max_epsilon:
        raise bad_input(
            f"epsilon must be in (0, {grade.max_epsilon}] at this grade",
            [{"path": ["epsilon"], "reason": f"must be in (0, {grade.max_epsilon}]"}],
        )
    months: tuple[str, ...] = ()
    if "MONTH" in ask.group_by:
        if ask.months is None:
            raise bad_input(
                "grouping by MONTH under differential privacy needs filter.monthFrom and "
                "filter.monthTo (the months are the cells released)",
                [{"path": ["filter", "monthFrom"], "reason": "required with MONTH"}],
            )
        months = _months_between(*ask.months)
        if len(months) > MAX_DP_MONTHS:
            raise bad_input(
                f"at most {MAX_DP_MONTHS} months",
                [{"path": ["filter"], "reason": "too many months"}],
            )
    sctx = await _context(ctx, months)
    domains = []
    for d in ask.group_by:
        domain = stat.dimensions[d].domain(sctx)
        if d in ask.equals:
            domain = tuple(v for v in domain if v == ask.equals[d])
        domains.append(domain)
    cells = list(product(*domains))
    if len(cells) > MAX_DP_CELLS:
        raise bad_input(
            f"{len(cells)} cells: at most {MAX_DP_CELLS} under differential privacy",
            [{"path": ["groupBy"], "reason": "too many cells"}],
        )
    ledger = _ledger(ctx)
    partner = partner_of(ctx, grade)
    period = period_of(ctx.now, grade.period)
    question = question_of(partner, ask, epsilon)
    budget_micro = dp.epsilon_micro(grade.budget)
    stored = await ledger.stored(partner, period, question)
    if stored is not None:
        return await _released(ctx, stat, grade, partner, period, stored, 0, reused=True)
    spent = await ledger.spent(partner, period)
    if spent + dp.epsilon_micro(epsilon) > budget_micro:
        raise _exhausted(grade, spent, budget_micro, ctx.now)
    bounds = Bounds(
        rows=stat.rows_per_person,
        # Nobody is in more cells than are released: a bound above that would only add noise.
        cells=max(1, min(stat.cells_per_person, len(cells))),
        totals={s: v.per_person for s, v in stat.sums.items()},
    )
    query = Query(stat, ask.group_by, (ask.group_by,), ask.equals, ask.months, scope, bounds)
    cube = await _run(ctx, query, months)
    if cube.failures:
        # A noisy answer is charged and kept for the whole period: never for partial data.
        raise GraphQLError(
            "a source did not answer; a differentially private answer is given whole or not "
            "at all (nothing was charged)",
            extensions={
                "code": "SOURCE_UNAVAILABLE",
                "sources": sorted(f.source for f in cube.failures),
            },
        )
    # A person may have rows at every source asked, each bounded on its own.
    sources = max(1, len(cube.asked))
    wanted = _wanted(stat, ask)
    per_source = {COUNT: bounds.rows, PERSONS: bounds.cells, **bounds.totals}
    share = epsilon / len(wanted)
    finest = cube.finest()
    released: dict[str, dp.Release] = {}
    for name in wanted:
        values: list[float] = []
        for key in cells:
            cell = finest.get(tuple(key))
            if cell is None:
                values.append(0.0)
            elif name == COUNT:
                values.append(float(cell.count))
            elif name == PERSONS:
                values.append(float(cell.persons_high))
            else:
                values.append(float(cell.sums[name]))
        released[name] = dp.laplace(values, sources * per_source[name], share)
    charged = sum(r.micro_epsilon for r in released.values())
    rows = []
    for i, key in enumerate(cells):
        m: dict[str, dict] = {}
        for name, release in released.items():
            money = name in stat.sums and stat.sums[name].money
            unit = 100 if money else 1
            # Rounded to whole units (fen for money): post-processing, free of charge.
            value = round(release.values[i]) / unit
            half = release.half_width / unit
            label = _camel(stat.count_name) if name == COUNT else _camel(name)
            m[label] = {
                "value": value,
                "low": value - half,
                "high": value + half,
                "exact": False,
                "noiseScale": release.scale / unit,
            }
        m.update(_shares(stat, m))
        rows.append(
            {**_row(ask.group_by, ask.group_by, tuple(key)), "suppressed": False, "measures": m}
        )
    answer = _answer(stat, grade, ask, rows, cube)
    answer["epsilon"] = epsilon
    answer["sensitivity"] = {
        "sources": sources,
        "rowsPerPerson": bounds.rows,
        "cellsPerPerson": bounds.cells,
        "totalPerPerson": {
            _camel(s): v.per_person / (100 if v.money else 1) for s, v in stat.sums.items()
        },
    }
    try:
        spend = await ledger.spend(
            partner=partner,
            period=period,
            question=question,
            statistic=stat.name,
            epsilon_micro=charged,
            budget_micro=budget_micro,
            answer=answer,
            request_id=ctx.request_id,
            now=ctx.now if ctx.now.tzinfo else ctx.now.astimezone(),
        )
    except BudgetExhausted as exc:
        raise _exhausted(grade, exc.spent_micro, budget_micro, ctx.now) from None
    if not spend.reused:
        await _audit_spend(
            ctx,
            partner,
            period,
            stat,
            question,
            spend.charged_micro,
            spend.spent_micro,
            budget_micro,
        )
    return await _released(
        ctx,
        stat,
        grade,
        partner,
        period,
        spend.answer,
        spend.charged_micro,
        spend.reused,
        spent=spend.spent_micro,
    )


def _exhausted(grade: Grade, spent: int, budget: int, now: datetime) -> GraphQLError:
    renews = period_end(now if now.tzinfo else now.astimezone(), grade.period)
    return GraphQLError(
        f"privacy budget exhausted: {spent / dp.MICRO:g} of {budget / dp.MICRO:g} epsilon spent "
        f"this {grade.period}; it renews at {times.answered(renews)}",
        extensions={
            "code": PRIVACY_BUDGET_EXHAUSTED,
            "spent": spent / dp.MICRO,
            "budget": budget / dp.MICRO,
            "renewsAt": times.answered(renews),
        },
    )


async def _audit_spend(ctx, partner, period, stat, question, charged, spent, budget) -> None:
    """The spend's own audit event, written before the answer leaves; if the log cannot take
    it, the answer is not released (the charge stands: failing closed costs budget, never
    privacy)."""
    recorder = ctx.services.extras.get(RECORDER)
    if recorder is None:
        return
    event = privacy_spend_event(
        principal=ctx.principal,
        purpose=ctx.purpose,
        partner=partner,
        period=period,
        statistic=stat.name,
        question=question,
        epsilon_micro=charged,
        spent_micro=spent,
        budget_micro=budget,
        request_id=ctx.request_id,
    )
    await recorder.record(event)


async def _released(ctx, stat, grade, partner, period, answer, charged, reused, spent=None):
    ledger = _ledger(ctx)
    if spent is None:
        spent = await ledger.spent(partner, period)
    budget = dp.epsilon_micro(grade.budget)
    answer = dict(answer)
    answer["privacy"] = {
        "partner": partner,
        "period": period,
        "charged": charged / dp.MICRO,
        "reused": reused,
        "spent": spent / dp.MICRO,
        "budget": budget / dp.MICRO,
        "remaining": max(0, budget - spent) / dp.MICRO,
    }
    return answer


async def _run(ctx: Any, query: Query, months: tuple[str, ...] = ()) -> Cube:
    # A statistic scans whole tables at the sources: its own, longer deadline.
    deadline = Deadline(ctx.services.statistics_deadline_seconds)
    cube = await run(query, list(ctx.registry), await _context(ctx, months), deadline)
    ctx.deadline.touched |= deadline.touched
    ctx.note_failures(cube.failures)
    return cube


async def _cached_pattern(ctx: Any, query: Query, k: int) -> tuple[Cube, Pattern]:
    """The cube of a SUPPRESSED grade and its pattern, computed once per TTL and shared by
    every caller at that grade (one snapshot makes every view of it consistent), refreshed
    ahead of its expiry (see :mod:`schema.statistics.cubes`)."""
    cache = ctx.services.extras.get(CUBE_CACHE)
    if cache is None:
        cache = ctx.services.extras[CUBE_CACHE] = CubeCache(CUBE_TTL, CUBE_REFRESH_AFTER)

    async def compute() -> tuple[tuple[Cube, Pattern], bool]:
        # May run after the request that started it has been answered: it uses only the
        # app's services and registry, and each caller notes the cube's failures itself.
        deadline = Deadline(ctx.services.statistics_deadline_seconds)
        cube = await run(query, list(ctx.registry), await _context(ctx), deadline)
        persons = {
            lv: {c: x.persons_low for c, x in cells.items()} for lv, cells in cube.cells.items()
        }
        return (cube, suppress(query.dims, persons, k)), not cube.failures

    cube, pattern = await cache.get((query.statistic.name, query.dims, query.scope, k), compute)
    ctx.deadline.touched.update(cube.asked)
    ctx.note_failures(cube.failures)
    return cube, pattern


# -- entry point -------------------------------------------------------------------------------
async def answer(ctx: Any, ask: Ask) -> dict:
    stat = STATISTICS[ask.statistic]
    _validate(stat, ask)
    unknown = [d for d in ask.group_by if d not in stat.dimensions]
    if unknown:
        raise bad_input(
            f"unknown dimension {unknown[0]}", [{"path": ["groupBy"], "reason": "unknown"}]
        )
    confined, scope = _confinement(ctx, ask)
    grade = _grade(ctx, stat, ask, confined)
    note = {
        "statistic": stat.name,
        "grade": grade.opening.value if grade else "EXACT",
        "groupBy": list(ask.group_by),
    }
    note_open_data(ctx, note)
    if grade is None or grade.opening is Opening.EXACT:
        if grade is not None and grade.scope == "REGION":
            pass  # the scope confines the rows to the caller's region (or the platform)
        elif grade is None:
            scope = Scope(prefix=scope.prefix)
        return await _exact_answer(ctx, stat, ask, grade, scope)
    if grade.opening is Opening.SUPPRESSED:
        return await _suppressed_answer(ctx, stat, ask, grade)
    result = await _dp_answer(ctx, stat, ask, grade, scope)
    note["epsilon"] = result["privacy"]["charged"]
    note["reused"] = result["privacy"]["reused"]
    return result
