"""``codes(kind, codes)``: the names of national codes, so a page labels 330100 as 杭州市, I10 as
原发性高血压 and a drug code as its drug without a code list of its own.

Public reference data (level 1) from the directory source: regions (GB/T 2260), diagnoses
(ICD-10) and drugs (national medical-insurance drug codes) from its ``code_labels``, institutions
from its ``institutions``. A code the directory does not know is answered with a null label;
asking says nothing about any person.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry

from connectors.fanout import fan_out
from connectors.sql.models import directory
from schema.errors import bad_input

MAX_CODES = 100


@strawberry.enum(description="A kind of national code that `codes` names.")
class CodeKind(Enum):
    REGION = strawberry.enum_value("REGION", description="GB/T 2260 region (行政区划).")
    DIAGNOSIS = strawberry.enum_value("DIAGNOSIS", description="ICD-10 diagnosis (诊断).")
    DRUG = strawberry.enum_value("DRUG", description="Medical-insurance drug code (医保药品).")
    INSTITUTION = strawberry.enum_value(
        "INSTITUTION", description="Designated institution (定点医药机构): its name."
    )


@strawberry.type(description="A national code and its name (public reference data).")
class CodeLabel:
    kind: CodeKind
    code: str
    label: str | None = strawberry.field(
        description="Its name (Chinese, as the national lists write it); null for a code the "
        "directory does not know."
    )


async def _labels(ctx, kind: CodeKind, wanted: list[str]) -> dict[str, str]:
    source = ctx.registry.directory()
    if source is None or not wanted:
        return {}
    if kind is CodeKind.INSTITUTION:
        table, column, key = directory.Institution.__table__, "name", "code"
    else:
        table, column, key = directory.CodeLabel.__table__, "label", "code"
    results, failures = await fan_out(
        [source], lambda s: s.fetch_in(table, key, wanted), ctx.deadline
    )
    ctx.note_failures(failures)
    return {
        r["code"]: r[column]
        for rows in results.values()
        for r in rows
        if kind is CodeKind.INSTITUTION or r["kind"] == kind.value
    }


@strawberry.type
class CodesQuery:
    @strawberry.field(
        description=f"The names of up to {MAX_CODES} codes of one kind, in the order asked "
        "(each code once). Public reference data: any caller."
    )
    async def codes(
        self,
        info: strawberry.Info,
        kind: CodeKind,
        codes: Annotated[list[str], strawberry.argument(description="The codes to name.")],
    ) -> list[CodeLabel]:
        wanted = list(dict.fromkeys(codes))
        if len(wanted) > MAX_CODES:
            reason = f"at most {MAX_CODES} codes per call"
            raise bad_input(reason, [{"path": ["codes"], "reason": reason}])
        found = await _labels(info.context, kind, wanted)
        return [CodeLabel(kind=kind, code=c, label=found.get(c)) for c in wanted]
