"""The last filter before a span or a log line leaves the process: anything that looks like
a personal value is replaced by ``(redacted)``.

What counts (docs/telemetry.md, "What never leaves"): Chinese text (names, addresses,
diagnoses and findings are written in it; nothing the gateway itself names is), an ID number
(17 digits and a check character), a mobile number (11 digits from 1[3-9]), a run of 20 or
more hex digits (the shape of a personId, a blind index or key material) and a JWT.
personIds are pseudonyms, but one linked across spans, logs and the audit log would
re-identify a person's visits by their timing, so they are kept out too. The code that
emits telemetry already names only closed sets; this filter is the guard for what a library
(httpx, SQLAlchemy, Strawberry) or a future change adds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import Status

REDACTED = "(redacted)"
_PERSONAL = re.compile(
    r"[\u3400-\u9fff\uf900-\ufaff]+"  # CJK: names, addresses, diagnosis text
    r"|(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])"  # an ID number
    r"|(?<![0-9])1[3-9][0-9]{9}(?![0-9])"  # a mobile number
    r"|(?<![0-9A-Fa-f])[0-9A-Fa-f]{20,}(?![0-9A-Fa-f])"  # a personId, blind index, key
    r"|eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)*"  # a JWT
)


@functools.lru_cache(maxsize=4096)
def _scrub_text(text: str) -> str:
    return _PERSONAL.sub(REDACTED, text)


def scrub(value: Any) -> Any:
    """``value`` with personal-looking parts replaced; non-strings pass (numbers, booleans).

    Strings are scrubbed through a bounded cache: a request's spans repeat the same few
    (source names, kinds, outcomes, routes, statement texts), and the search is most of a
    span's filtering. The cache is this process's memory, which held the text anyway; only
    the filter's output leaves."""
    if isinstance(value, str):
        return _scrub_text(value) if len(value) <= 512 else _PERSONAL.sub(REDACTED, value)
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def scrub_mapping(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: scrub(value) for key, value in (attributes or {}).items()}


class RedactingProcessor(SpanProcessor):
    """A span processor placed before the exporting one: on end, every attribute, event
    attribute and status description of the span is scrubbed (an exception event keeps
    only its type: its message and stack trace may quote a row)."""

    def on_end(self, span: Any) -> None:
        span._attributes = scrub_mapping(span.attributes)
        if span.events:
            for event in span.events:
                event._attributes = (
                    {k: v for k, v in (event.attributes or {}).items() if k == "exception.type"}
                    if event.name == "exception"
                    else scrub_mapping(event.attributes)
                )
        status = span.status
        if status.description:
            span._status = Status(status.status_code, scrub(status.description))
        span._name = scrub(span.name)
