"""The hook through which the gateway's telemetry watches each source fetch.

Connectors import nothing of the gateway: :func:`fetching` is a no-op until the gateway
installs an observer (:func:`install`), which then opens a span and times the fetch. The
observer sees the source object and the :class:`Fetch` note, never a row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Fetch:
    source: Any  # connectors.registry.Source or PeerSource
    rows: int | None = None  # rows (or items) the fetch returned, when countable


Observer = Callable[[Fetch], contextlib.AbstractContextManager[None]]
_observer: Observer | None = None


def install(observer: Observer | None) -> None:
    global _observer
    _observer = observer


@contextlib.contextmanager
def fetching(source: Any) -> Iterator[Fetch]:
    note = Fetch(source)
    if _observer is None:
        yield note
        return
    with _observer(note):
        yield note
