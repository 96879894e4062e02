"""GraphQL types of the statistics: one answer shape for every statistic and grade."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from connectors.statistics.catalogue import STATISTICS


def _dimension_enum(name: str, statistic: str, description: str) -> type[Enum]:
    dims = STATISTICS[statistic].dimensions
    enum = Enum(name, {d: d for d in dims})  # type: ignore[misc]
    return strawberry.enum(
        enum,
        description=description + " " + " ".join(f"{d}: {v.description}" for d, v in dims.items()),
    )


SettlementDimension = _dimension_enum(
    "SettlementDimension", "settlement", "What settlement statistics group by."
)
FilingDimension = _dimension_enum("FilingDimension", "filing", "What filing statistics group by.")
InternetServiceDimension = _dimension_enum(
    "InternetServiceDimension", "internetCare.services", "What internet-care services group by."
)
DrugDimension = _dimension_enum(
    "DrugDimension", "internetCare.drugs", "What drug figures group by."
)
InternetHospitalDimension = _dimension_enum(
    "InternetHospitalDimension", "internetCare.institutions", "What internet hospitals group by."
)
RecognitionDimension = _dimension_enum(
    "RecognitionDimension", "recognition", "What recognition statistics group by."
)


@strawberry.enum(description="How openly a statistic is answered (分级开放).")
class OpeningGrade(Enum):
    EXACT = strawberry.enum_value("EXACT", description="Exact figures.")
    SUPPRESSED = strawberry.enum_value(
        "SUPPRESSED", description="Cells under k persons suppressed, with complementary cells."
    )
    DP = strawberry.enum_value("DP", description="Differentially private (OpenDP) figures.")


@strawberry.input(description="A dimension held to one value.")
class DimensionEquals:
    dimension: str = strawberry.field(description="A dimension of the statistic, e.g. MONTH.")
    value: str = strawberry.field(description="Its value, as rows show it, e.g. 2020-03.")


@strawberry.input(description="Which rows a statistic counts.")
class StatisticsFilter:
    equals: list[DimensionEquals] | None = strawberry.field(
        default=None, description="Dimensions held to one value each."
    )
    month_from: str | None = strawberry.field(default=None, description="First month, YYYY-MM.")
    month_to: str | None = strawberry.field(default=None, description="Last month, YYYY-MM.")
    region: str | None = strawberry.field(
        default=None,
        description="Only rows whose insured or treatment place is in this region (6 digits; "
        "a province or city covers what is inside it). Inside the caller's own region this "
        "confines the request to it, and a region-scoped grade (EXACT for an agency) applies.",
    )


@strawberry.type(
    description="One dimension's value in a row; null where the row is a total over it."
)
class DimensionValue:
    dimension: str
    value: str | None


@strawberry.type(
    description="One figure: exact, or noisy (DP) with its noise scale and 95 % interval. "
    "Persons are counted once per source that holds their rows (low: the largest source's "
    "count, high: the sum); exact says whether they are the same persons."
)
class MeasureValue:
    name: str
    value: float | None
    low: float | None = strawberry.field(description="Lower end: interval or bound.")
    high: float | None = strawberry.field(description="Upper end: interval or bound.")
    exact: bool
    noise_scale: float | None = strawberry.field(
        description="Scale of the discrete Laplace noise (DP only), in the figure's unit."
    )


@strawberry.type(description="A cell, or a total over some dimensions.")
class StatisticsRow:
    key: list[DimensionValue]
    total_over: list[str] = strawberry.field(description="Dimensions this row sums over.")
    suppressed: bool = strawberry.field(description="Hidden: too few persons, or to protect one.")
    measures: list[MeasureValue]

    @strawberry.field(description="One measure by name (e.g. fundShare), null when hidden.")
    def measure(self, name: str) -> MeasureValue | None:
        return next((m for m in self.measures if m.name == name), None)


@strawberry.type(description="What a differentially private answer cost.")
class PrivacyCharge:
    partner: str
    period: str
    charged: float = strawberry.field(description="Epsilon charged (0 when reused).")
    reused: bool = strawberry.field(
        description="The same question this period: the stored answer, not charged again."
    )
    spent: float
    budget: float
    remaining: float


@strawberry.type(description="A statistic, answered at the caller's grade.")
class StatisticsAnswer:
    statistic: str
    grade: OpeningGrade
    why: str = strawberry.field(description="The grade's reason, from the policy file.")
    group_by: list[str]
    k: int | None = strawberry.field(description="The suppression threshold (SUPPRESSED).")
    suppressed_cells: int | None
    epsilon: float | None = strawberry.field(description="Epsilon of this answer (DP).")
    rows: list[StatisticsRow]
    privacy: PrivacyCharge | None
    sources: list[str] = strawberry.field(description="Sources whose partials were merged.")

    @classmethod
    def of(cls, answer: dict[str, Any]) -> StatisticsAnswer:
        rows = [
            StatisticsRow(
                key=[DimensionValue(**k) for k in r["key"]],
                total_over=list(r["totalOver"]),
                suppressed=r["suppressed"],
                measures=[
                    MeasureValue(
                        name=name,
                        value=m.get("value"),
                        low=m.get("low"),
                        high=m.get("high"),
                        exact=bool(m.get("exact")),
                        noise_scale=m.get("noiseScale"),
                    )
                    for name, m in r["measures"].items()
                ],
            )
            for r in answer["rows"]
        ]
        privacy = answer.get("privacy")
        return cls(
            statistic=answer["statistic"],
            grade=OpeningGrade(answer["grade"]),
            why=answer["why"],
            group_by=list(answer["groupBy"]),
            k=answer.get("k"),
            suppressed_cells=answer.get("suppressedCells"),
            epsilon=answer.get("epsilon"),
            rows=rows,
            privacy=PrivacyCharge(**privacy) if privacy else None,
            sources=list(answer.get("sources", [])),
        )


@strawberry.type(description="A partner's privacy budget in the current period.")
class PrivacyBudget:
    partner: str
    grade: OpeningGrade
    period: str
    budget: float = strawberry.field(description="Epsilon per period.")
    spent: float
    remaining: float
    questions: int = strawberry.field(description="Questions answered (and stored) this period.")
    renews_at: datetime = strawberry.field(
        description="When the next period begins (periods are counted in UTC)."
    )
    default_epsilon: float
    max_epsilon: float
