"""The app factory each ``medfed serve --workers N`` worker runs.

uvicorn spawns every worker and pickles its configuration, app factory included, into the
new process; it then waits only seconds for the worker to answer its pings. So what is
pickled stays light: this module (no imports beyond the standard library) and the parent's
checked settings as bytes, unpickled by the factory once the worker is up. No setting passes
through the environment, and every worker serves exactly what the parent checked.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any


def factory(settings: Any, subgraph: str | None) -> functools.partial[Any]:
    """The factory for uvicorn (``factory=True``), holding ``settings`` pickled."""
    return functools.partial(_app, pickle.dumps(settings), subgraph)


def _app(blob: bytes, subgraph: str | None) -> Any:
    from gateway.app import create_app

    # The parent process pickled these bytes a moment ago; nothing else writes them.
    settings = pickle.loads(blob)  # noqa: S301
    return create_app(settings, subgraph=subgraph)
