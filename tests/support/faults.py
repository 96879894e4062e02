"""The fault suite's table: per case, how many runs, how many writes or reads were
acknowledged, and how many were lost, left unlogged or answered with a 5xx (all must be 0).

``make test`` runs the quick cases with few runs; ``make faults`` (``MEDFED_FAULTS=full``)
runs every case, with more runs each. The table is printed at the end of the session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

FULL = os.environ.get("MEDFED_FAULTS") == "full"
LONG_REASON = "long fault case: run by `make faults`"


def runs(quick: int, full: int) -> int:
    return full if FULL else quick


@dataclass
class Row:
    case: str
    runs: int = 0
    acknowledged: int = 0
    lost: int = 0
    unlogged: int = 0
    server_errors: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def row(self, case: str) -> Row:
        found = Row(case)
        self.rows.append(found)
        return found

    def render(self) -> str:
        header = ("case", "runs", "acknowledged", "lost", "unlogged", "5xx")
        body = [
            (
                r.case,
                str(r.runs),
                str(r.acknowledged),
                str(r.lost),
                str(r.unlogged),
                str(r.server_errors),
            )
            for r in self.rows
        ]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*line) for line in body]
        lines += [f"  {r.case}: {note}" for r in self.rows for note in r.notes]
        return "\n".join(lines)


TABLE = Table()
FAULT_ROWS = "fault_rows"  # the user_properties key a fault test's rows travel under
