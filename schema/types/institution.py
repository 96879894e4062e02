"""Institutions (定点医疗机构 and 定点零售药店) from the directory source."""

from __future__ import annotations

import strawberry

from schema.enums import InstitutionKind, InstitutionLevel, enum_or_none
from schema.types.common import Row


@strawberry.federation.type(
    keys=["code"],
    shareable=True,
    description="A designated hospital, internet hospital or pharmacy (定点医药机构). Public "
    "directory data, level 1.",
)
class Institution:
    code: str = strawberry.field(
        description="National institution code: H (hospital) or P (pharmacy) + six-digit "
        "region + five digits."
    )
    name: str = strawberry.field(description="Registered name (机构名称).")
    level: InstitutionLevel | None = strawberry.field(description="Hospital level (医院等级).")
    kind: InstitutionKind | None = strawberry.field(description="Hospital or pharmacy.")
    region: str = strawberry.field(description="GB/T 2260 region code of its location.")
    internet_hospital: bool = strawberry.field(
        description="Whether it runs an internet hospital (互联网医院) for online revisits."
    )
    address: str | None = strawberry.field(
        default=None, description="Its public street address (机构地址), from the directory."
    )
    phone: str | None = strawberry.field(
        default=None, description="Its public switchboard number (机构电话), from the directory."
    )

    @classmethod
    async def resolve_reference(cls, info: strawberry.Info, code: str) -> Institution | None:
        return await institution_of(info, code)

    @classmethod
    def from_row(cls, row: Row) -> Institution:
        return cls(
            code=row["code"],
            name=row["name"],
            level=enum_or_none(InstitutionLevel, row["level"]),
            kind=enum_or_none(InstitutionKind, row["kind"]),
            region=row["region"],
            internet_hospital=bool(row["internet_hospital"]),
            address=row.get("address"),
            phone=row.get("phone"),
        )


async def institution_of(info: strawberry.Info, code: str | None) -> Institution | None:
    if code is None:
        return None
    ctx = info.context
    row = await ctx.load(ctx.loaders.institutions, code, info)
    return None if row is None else Institution.from_row(row)
