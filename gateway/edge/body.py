"""The one JSON parse of a request body, with one depth limit, shared by the edge and
Strawberry.

The edge parses the body to refuse what no client legitimately sends; Strawberry would then
parse it again with the standard library, whose recursion limit is not the edge's (a body
nested 1,000 deep passed orjson and crashed ``json.loads`` with a 500). So the edge keeps
what it parsed, and the GraphQL view's ``decode_json`` (Strawberry's documented override
point) returns it when handed the same bytes; any other JSON the view decodes goes through
the same function, so there is one parser and one limit either way.

orjson parses. A body it refuses only because a number is beyond double range (``1e400``,
or an integer of 400 digits) is valid JSON all the same: the standard library parses that
one, so the value reaches GraphQL and is answered as ``BAD_USER_INPUT`` at its path.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any

import orjson

from security.errors import MedfedError

DEFAULT_MAX_DEPTH = 32  # objects and arrays inside one another; a GraphQL body needs ~6
_LAST: contextvars.ContextVar[tuple[bytes, Any] | None] = contextvars.ContextVar(
    "medfed_parsed_body", default=None
)
# Integers longer than this are not converted (Python refuses over 4,300 digits anyway);
# they become infinity, which every numeric GraphQL type refuses with its own message.
_MAX_INT_DIGITS = 400


class BodyRefused(MedfedError):
    """The body is not JSON the gateway accepts: answer 400 with ``code``."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _int(text: str) -> float | int:
    return int(text) if len(text) <= _MAX_INT_DIGITS else float("inf")


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise RecursionError from None
        if "number" not in str(exc):
            raise BodyRefused("MALFORMED_REQUEST", "the request body is not valid JSON") from None
    try:  # a number orjson cannot hold: valid JSON, parsed by the standard library
        return json.loads(body, parse_int=_int)
    except ValueError:
        raise BodyRefused("MALFORMED_REQUEST", "the request body is not valid JSON") from None


def parse(body: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON value of ``body``; raises :class:`BodyRefused` (never RecursionError)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyRefused("MALFORMED_REQUEST", "the request body is not valid UTF-8") from None
    try:
        value = _loads(body)
    except RecursionError:
        value = None
        too_deep = True
    else:
        too_deep = isinstance(value, dict | list) and _too_deep(value, max_depth)
    if too_deep:
        raise BodyRefused(
            "JSON_TOO_DEEP", f"the request body nests objects and arrays deeper than {max_depth}"
        )
    return value


def remember(body: bytes, value: Any) -> None:
    """Keep the edge's parse for the view (same task, so the same context)."""
    _LAST.set((body, value))


def decode(data: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """What the GraphQL view decodes: the edge's parse of these very bytes, else a parse."""
    last = _LAST.get()
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if last is not None and last[0] == raw:
        _LAST.set(None)  # used once: nothing of this request reaches another
        return last[1]
    return parse(raw, max_depth)
