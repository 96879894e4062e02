"""Reading e-prescriptions at their prescribing hospitals (the workflow's record)."""

from __future__ import annotations

import strawberry

from connectors.fanout import fan_out
from connectors.sql import rx_writers
from schema.selection import requested
from schema.types.records import PRESCRIPTION, Prescription


async def rx_rows(info: strawberry.Info, rx_id: str) -> list[dict]:
    """The prescription's row at whichever hospital holds it (each hospital asked once)."""
    ctx = info.context
    results, failures = await fan_out(
        ctx.registry.of_kind("hospital"),
        lambda s: s.fetch_in(rx_writers.RX, "rx_id", [rx_id]),
        ctx.deadline,
    )
    ctx.note_failures(failures)
    if ctx.failures:
        ctx.attribute_failures(info)
    return [{**row, "_source": name} for name, rows in results.items() for row in rows]


@strawberry.type
class PrescriptionQuery:
    @strawberry.field(
        description="One e-prescription at its prescribing hospital, with its workflow state: "
        "each field is what the policy lets the caller read (null when no hospital holds it "
        "or no field is visible)."
    )
    async def prescription(
        self, info: strawberry.Info, prescription_id: strawberry.ID
    ) -> Prescription | None:
        ctx = info.context
        rows = await rx_rows(info, str(prescription_id))
        await ctx.prepare_relations([r["person_ref"] for r in rows])
        rows = PRESCRIPTION.keep_visible(ctx, rows)
        built = PRESCRIPTION.build_all(ctx, rows, requested(info))
        return built[0] if built else None


__all__ = ["PrescriptionQuery"]
