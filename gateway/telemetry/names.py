"""What names an operation in metrics and spans: its name when that is a plain identifier,
otherwise the hash of its document's shape (:mod:`gateway.telemetry.shape`: literals,
aliases and the client's own names taken out first). Never the document's text, nor a hash
of it, which can hold literal values (``person(idNumber: "...")``).

An operation name is the client's text too: a name with a long run of digits could carry
an ID number or a phone number (``q330106198005171234``), so such a name is replaced by the
document hash; and the set of labels one process emits is capped, so a client inventing a
name per request cannot grow the metrics without bound.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DIGITS = re.compile(r"[0-9]{4,}")
MAX_LABELS = 200  # per kind: names, and hashes of unnamed documents
OTHER = "(other)"
ANONYMOUS = "(none)"  # not a GraphQL request, or no document
INVALID = "(invalid)"  # an unnamed document that did not parse or validate: no shape to hash


def safe_name(name: str | None) -> str | None:
    """``name`` when it may appear in telemetry, else None."""
    if name and _NAME.match(name) and not _DIGITS.search(name):
        return name
    return None


class OperationLabels:
    """The labels one process hands out, capped per kind: unnamed documents (a fuzzer, a
    client that never names its operations) cannot push the named operations out."""

    def __init__(self, limit: int = MAX_LABELS) -> None:
        self.limit = limit
        self.names: set[str] = set()
        self.hashes: set[str] = set()

    def label(self, name: str | None, shape: str | None, *, document: bool = True) -> str:
        """``shape``: the document's shape hash, None when it did not validate;
        ``document``: whether the request carried one at all."""
        named = safe_name(name)
        label = named or shape or (INVALID if document else ANONYMOUS)
        if label in (ANONYMOUS, INVALID):
            return label
        seen = self.names if named else self.hashes
        if label in seen:
            return label
        if len(seen) >= self.limit:
            return OTHER
        seen.add(label)
        return label


LABELS = OperationLabels()


def operation_label(name: str | None, shape: str | None, *, document: bool = True) -> str:
    return LABELS.label(name, shape, document=document)
