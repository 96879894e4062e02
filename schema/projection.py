"""Turning source rows into API objects through the enforcement point.

A :class:`Projection` lists, per GraphQL field of a type, how to read it from a row and
whether it is personal. ``build`` opens only the requested fields; personal ones go through
``FieldGuard.read`` (the single enforcement point) with the row's relation to the caller.
A denied field becomes a ``FORBIDDEN_FIELD`` error at its own path, and the rest answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from security.crypto import DecryptionError
from security.enforcement import FieldDenied

Row = dict[str, Any]


@dataclass(frozen=True)
class F:
    """One field: its GraphQL name, the attribute it fills, and how to read it."""

    name: str
    attr: str
    read: Callable[[Any, Row], Any]  # (context, row) -> value
    personal: bool = True
    mask: Callable[[Any], Any] | None = None


def col(column: str, convert: Callable[[Any], Any] | None = None) -> Callable[[Any, Row], Any]:
    if convert is None:
        return lambda _ctx, row: row[column]
    return lambda _ctx, row: None if row[column] is None else convert(row[column])


def enc(table: str, column: str, pk: str, convert: Callable[[str], Any] | None = None):
    """Read an encrypted column: AES-GCM bound to (table, column, primary key)."""

    def read(ctx: Any, row: Row) -> Any:
        blob = row[column]
        if blob is None:
            return None
        plain = ctx.cipher.decrypt(blob, table=table, column=column, row_key=str(row[pk]))
        return plain if convert is None else convert(plain)

    return read


def forbidden(type_name: str, field_name: str, reason: str) -> GraphQLError:
    return GraphQLError(
        f"Not authorized to read {type_name}.{field_name}: {reason}",
        extensions={"code": "FORBIDDEN_FIELD", "type": type_name, "field": field_name,
                    "reason": reason},
    )


class Projection:
    def __init__(self, type_name: str, cls: type, fields: Iterable[F],
                 person_ref: Callable[[Row], str | None]) -> None:
        self.type_name = type_name
        self.cls = cls
        self.fields = {f.name: f for f in fields}
        self.person_ref = person_ref

    def build(self, ctx: Any, row: Row, requested: frozenset[str], **extra: Any) -> Any:
        ref = self.person_ref(row)
        relation = ctx.relation_to(ref, row)
        values: dict[str, Any] = {}
        guard = ctx.guard
        for name in requested:
            spec = self.fields.get(name)
            if spec is None:
                continue
            if not spec.personal:
                values[spec.attr] = spec.read(ctx, row)
                continue
            try:
                values[spec.attr] = guard.read(
                    self.type_name, name, relation, ref,
                    lambda spec=spec: spec.read(ctx, row), spec.mask,
                )
            except FieldDenied as denied:
                values[spec.attr] = forbidden(self.type_name, name, denied.reason)
            except DecryptionError:
                # A value that does not open was tampered with or moved: say so, show nothing.
                values[spec.attr] = GraphQLError(
                    f"{self.type_name}.{name} could not be decrypted at its source",
                    extensions={"code": "DATA_INTEGRITY"},
                )
        return self.cls(_row=row, _ref=ref, **values, **extra)

    def build_all(self, ctx: Any, rows: Iterable[Row], requested: frozenset[str]) -> list[Any]:
        return [self.build(ctx, row, requested) for row in rows]
