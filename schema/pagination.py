"""Relay connections with keyset cursors and a hard page-size limit.

A cursor is the sort key of the last row seen (for example ``[time, id]``), base64-encoded.
Keyset cursors stay right when rows arrive meanwhile, and pages from several sources merge by
comparing keys, so one cursor works across every source of a connection.
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import orjson
import strawberry

from schema.errors import bad_input

T = TypeVar("T")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
Key = tuple[Any, ...]


# Shareable: every federation subgraph has connections.
@strawberry.federation.type(
    shareable=True, description="Where a page of a connection stands (Relay)."
)
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    has_previous_page: bool = strawberry.field(
        description="Whether this page follows another: it was asked for `after` a cursor "
        "(pages go forward only, with first/after)."
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first item.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last item; pass it as `after` for the next page."
    )


@strawberry.type(description="One item of a connection with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque cursor of this item.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items (Relay connection). Pages hold at most 100 items.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items with their cursors.")
    nodes: list[T] = strawberry.field(description="The items, without cursors.")
    page_info: PageInfo = strawberry.field(description="Paging state.")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([_plain(v) for v in key])).decode()


def decode_cursor(cursor: str | None, shape: Sequence[type]) -> Key | None:
    """Decode ``cursor`` into values of the types in ``shape`` (datetime, date, str, int)."""
    if cursor is None:
        return None
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(raw, list) or len(raw) != len(shape):
            raise ValueError
        out = []
        for value, kind in zip(raw, shape, strict=True):
            if kind is datetime:
                out.append(datetime.fromisoformat(value))
            elif kind is date:
                out.append(date.fromisoformat(value))
            elif not isinstance(value, kind):
                raise ValueError
            else:
                out.append(value)
        return tuple(out)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise bad_input(
            "`after` is not a cursor of this connection",
            [{"path": ["after"], "reason": "not a cursor of this connection"}],
        ) from None


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise bad_input(
            f"`first` must be between 1 and {MAX_PAGE_SIZE}",
            [{"path": ["first"], "reason": f"{first} is outside 1-{MAX_PAGE_SIZE}"}],
        )
    return first


def connection(
    items: Sequence[tuple[Key, T]], limit: int, after: str | None = None, *, edges: bool = True
) -> Connection[T]:
    """A connection from up to ``limit + 1`` (key, node) pairs already in order, the page
    that follows the cursor ``after`` (None: the first page). Without ``edges`` (not asked
    for) only the first and last items' cursors are encoded, for the page info."""
    page = items[:limit]
    end_cursor = encode_cursor(page[-1][0]) if page else None
    return Connection(
        edges=[Edge(cursor=encode_cursor(k), node=n) for k, n in page] if edges else [],
        nodes=[n for _, n in page],
        page_info=PageInfo(
            has_next_page=len(items) > limit,
            has_previous_page=after is not None,
            start_cursor=encode_cursor(page[0][0]) if page else None,
            end_cursor=end_cursor,
        ),
    )


def merge_pages(
    pages: Iterable[Sequence[T]], key: Callable[[T], Key], descending: bool, limit: int
) -> list[T]:
    """Merge per-source pages that are each sorted by ``key`` into the first ``limit``."""
    merged = heapq.merge(*pages, key=key, reverse=descending)
    out: list[T] = []
    for item in merged:
        out.append(item)
        if len(out) == limit:
            break
    return out


def page_in_memory(
    rows: Sequence[T], key: Callable[[T], Key], descending: bool, after: Key | None, limit: int
) -> list[T]:
    """Sort ``rows`` by ``key`` and keep up to ``limit`` after the cursor ``after``."""
    ordered = sorted(rows, key=key, reverse=descending)
    if after is not None:
        ordered = [r for r in ordered if (key(r) < after if descending else key(r) > after)]
    return ordered[:limit]
