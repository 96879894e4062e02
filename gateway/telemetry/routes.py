"""The route a request matched, as its template: what logs and metrics name instead of the
raw path, which is the client's text (a probe for ``/person/<ID number>`` must not write the
number into a log line or a label)."""

from __future__ import annotations

from starlette.types import Scope

UNMATCHED = "(unmatched)"


def route_of(scope: Scope) -> str:
    """The path template of the app's route that matches ``scope``, or ``(unmatched)``."""
    path = scope.get("path", "")
    for route in getattr(scope.get("app"), "routes", ()):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            return getattr(route, "path", None) or UNMATCHED
    return UNMATCHED
