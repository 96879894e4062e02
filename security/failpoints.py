"""Named points where a fault test can stop a process on purpose (test instrumentation).

Off unless the environment names points: ``MEDFED_FAILPOINTS="mutation.after_intent=pause"``
with ``MEDFED_FAILPOINT_DIR=/some/dir``. At a paused point the process creates
``<dir>/<point>.reached`` (with its pid) and waits until ``<dir>/<point>.go`` exists, so the
test can ``kill -9`` it, or its audit writer, exactly there, and then let it go on.
``pause@N`` pauses at the point's N-th pass instead of its first. A point fires once: not
again once its ``.reached`` file exists, even in another process (child processes inherit
the environment, so the SQLite audit writer that replaces a killed one sees it too).
Nothing a client sends can switch a point on; when none is configured a point costs one
dictionary lookup.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

_SPEC = os.environ.get("MEDFED_FAILPOINTS", "")
_POINTS: dict[str, str] = dict(item.split("=", 1) for item in _SPEC.split(",") if "=" in item)
_DIR = Path(os.environ.get("MEDFED_FAILPOINT_DIR", "."))
_passes: dict[str, int] = {}


def _due(point: str) -> bool:
    action = _POINTS.get(point)
    if action is None:
        return False
    name, _, nth = action.partition("@")
    if name != "pause":
        return False
    _passes[point] = _passes.get(point, 0) + 1
    reached = _DIR / f"{point}.reached"
    if _passes[point] != (int(nth) if nth.isdigit() else 1) or reached.exists():
        return False
    reached.write_text(str(os.getpid()))
    return True


async def reach(point: str) -> None:
    if _POINTS and _due(point):
        go = _DIR / f"{point}.go"
        while not go.exists():  # noqa: ASYNC110 (another process creates the file)
            await asyncio.sleep(0.02)


def reach_sync(point: str) -> None:
    """The same, for code without an event loop (the audit writer process)."""
    if _POINTS and _due(point):
        go = _DIR / f"{point}.go"
        while not go.exists():
            time.sleep(0.02)
