"""The hook through which the gateway's telemetry watches each source fetch.

Connectors import nothing of the gateway: :func:`fetching` is a no-op until the gateway
installs an observer (:func:`install`), which then opens a span and times the fetch. The
observer sees the source object and the :class:`Fetch` note, never a row.

The statements a fetch runs are counted on its own note, found through a context variable
that :func:`fetching` sets: the fetches of one request run concurrently (``fan_out``
gathers them, and sibling fields resolve at once), each in its own task and so its own
context, so a count kept per source would mix theirs.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Fetch:
    source: Any  # connectors.registry.Source or PeerSource
    rows: int | None = None  # rows (or items) the fetch returned, when countable
    statements: int = 0  # SQL statements run, or requests sent to a peer, in this fetch


_current: contextvars.ContextVar[Fetch | None] = contextvars.ContextVar(
    "medfed_fetch", default=None
)


def statement() -> None:
    """Counts one statement (or peer request) on the fetch running in this context."""
    fetch = _current.get()
    if fetch is not None:
        fetch.statements += 1


Observer = Callable[[Fetch], contextlib.AbstractContextManager[None]]
_observer: Observer | None = None


def install(observer: Observer | None) -> None:
    global _observer
    _observer = observer


@contextlib.contextmanager
def fetching(source: Any) -> Iterator[Fetch]:
    note = Fetch(source)
    token = _current.set(note)
    try:
        if _observer is None:
            yield note
            return
        with _observer(note):
            yield note
    finally:
        _current.reset(token)
