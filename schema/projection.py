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

from connectors.graphql_peer.rows import is_peer_row
from security.catalogue import default_catalogue
from security.crypto import DecryptionError
from security.enforcement import Decision, FieldDenied

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
        if is_peer_row(row):
            # Opened (and masked) by the peer for our connection; still reaches the caller
            # only through FieldGuard.read, like any other value.
            if not isinstance(blob, str):
                raise DecryptionError("a peer value is not text")
            return blob if convert is None else convert(blob)
        source = row.get("_source")
        if source is None:  # fail closed: a row must say which source's keys may open it
            raise DecryptionError(f"{table}.{column}: a row without its source")
        plain = ctx.cipher.decrypt(
            blob, source=source, table=table, column=column, row_key=str(row[pk])
        )
        return plain if convert is None else convert(plain)

    return read


def forbidden(type_name: str, field_name: str, reason: str) -> GraphQLError:
    return GraphQLError(
        f"Not authorized to read {type_name}.{field_name}: {reason}",
        extensions={
            "code": "FORBIDDEN_FIELD",
            "type": type_name,
            "field": field_name,
            "reason": reason,
        },
    )


class Projection:
    """Builds API objects of one type from rows.

    Whether a field is guarded, its class (consent is per class) and its mask come from the
    data catalogue: a field the catalogue does not know is guarded, and the policy denies it.
    """

    def __init__(
        self,
        type_name: str,
        cls: type,
        fields: Iterable[F],
        person_ref: Callable[[Row], str | None],
    ) -> None:
        catalogue = default_catalogue()
        self.type_name = type_name
        self.cls = cls
        self.person_ref = person_ref
        self.fields: dict[str, _Spec] = {}
        for f in fields:
            entry = catalogue.field(type_name, f.name)
            guarded = f.personal or entry is None or entry.level > 1
            self.fields[f.name] = _Spec(
                f.attr,
                f.read,
                guarded,
                entry.data_class if entry else None,
                f.mask or (entry.mask_fn if entry else None),
            )
        self._plans: dict[frozenset[str], list[tuple[str, _Spec]]] = {}
        self._classes: dict[frozenset[str], tuple[str | None, ...]] = {}
        type_entry = catalogue.types.get(type_name)
        self.row_field = type_entry.row if type_entry else None
        row_entry = catalogue.field(type_name, self.row_field) if self.row_field else None
        self._row_class = row_entry.data_class if row_entry else None

    def build(self, ctx: Any, row: Row, requested: frozenset[str], **extra: Any) -> Any:
        ref = self.person_ref(row)
        ctx.row_sources.add(row.get("_source"))  # the data holder, named in the audit event
        plan = self._plan(requested)
        classes = self._classes.get(requested)
        if classes is None:  # the data classes whose relation the guarded fields need
            classes = tuple(dict.fromkeys(spec.data_class for _, spec in plan if spec.guarded))
            if len(self._classes) < 256:  # bounded like the plans
                self._classes[requested] = classes
        relations = tuple(ctx.relation_to(ref, row, c) for c in classes)
        key = (self, requested, ref, relations)
        admitted = ctx.admitted.get(key)
        if admitted is None:
            admitted = ctx.admitted[key] = self._admit(
                ctx, plan, ref, dict(zip(classes, relations, strict=True))
            )
        values: dict[str, Any] = {}
        type_name = self.type_name
        for name, spec, action, detail in admitted:
            if action is _DENY:
                values[spec.attr] = forbidden(type_name, name, detail)
                continue
            try:
                value = spec.read(ctx, row)
            except DecryptionError:
                # A value that does not open was tampered with or moved: say so, show nothing.
                values[spec.attr] = GraphQLError(
                    f"{type_name}.{name} could not be decrypted at its source",
                    extensions={"code": "DATA_INTEGRITY"},
                )
                continue
            values[spec.attr] = detail(value) if action is _MASK else value
        return self.cls(_row=row, _ref=ref, **values, **extra)

    def _admit(
        self, ctx: Any, plan: list[tuple[str, _Spec]], ref: str | None, relations: dict
    ) -> list[tuple[str, _Spec, object, Any]]:
        """The guard's decision for each field of ``plan`` for this person and these
        relations, decided and recorded once (``FieldGuard.admit``): then every value of
        the same person, relations and selection only applies it."""
        out: list[tuple[str, _Spec, object, Any]] = []
        guard = ctx.guard
        for name, spec in plan:
            if not spec.guarded:
                out.append((name, spec, _OPEN, None))
                continue
            try:
                decision = guard.admit(
                    self.type_name, name, relations[spec.data_class], ref, spec.mask is not None
                )
            except FieldDenied as denied:
                out.append((name, spec, _DENY, denied.reason))
                continue
            if decision is Decision.MASK:
                out.append((name, spec, _MASK, spec.mask))
            else:
                out.append((name, spec, _OPEN, None))
        return out

    def _plan(self, requested: frozenset[str]) -> list[tuple[str, _Spec]]:
        """The known fields among ``requested``, once per distinct selection."""
        plan = self._plans.get(requested)
        if plan is None:
            plan = [(name, self.fields[name]) for name in requested if name in self.fields]
            if len(self._plans) < 256:  # selections come from queries: bound what is kept
                self._plans[requested] = plan
        return plan

    def build_all(self, ctx: Any, rows: Iterable[Row], requested: frozenset[str]) -> list[Any]:
        return [self.build(ctx, row, requested) for row in rows]

    def visible(self, ctx: Any, row: Row) -> bool:
        """Whether a list may show this row at all: the caller may read its row field.
        Lists drop the rest, so neither their ids nor their cursors reach the caller (the
        guard records each dropped row as a denial, for the audit log)."""
        if self.row_field is None:
            return True
        ref = self.person_ref(row)
        relation = ctx.relation_to(ref, row, self._row_class)
        return ctx.guard.shows_row(self.type_name, self.row_field, relation, ref)

    def rows_alike(self, ctx: Any, person_ref: str | None) -> bool:
        """Whether ``visible`` answers the same for every row of this person (prepared), so
        a list of them may be paged before the rows are seen (in SQL)."""
        return self.row_field is None or ctx.relations.person_decides(person_ref, self._row_class)

    def keep_visible(self, ctx: Any, rows: Iterable[Row]) -> list[Row]:
        return [row for row in rows if self.visible(ctx, row)]


# What a field's admission says to do with each value: open it, open and mask it, or deny.
_OPEN, _MASK, _DENY = object(), object(), object()


@dataclass(frozen=True, slots=True)
class _Spec:
    attr: str
    read: Callable[[Any, Row], Any]
    guarded: bool
    data_class: str | None
    mask: Callable[[Any], Any] | None
