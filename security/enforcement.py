"""The single enforcement point: every read of a personal field passes through here.

Resolvers never decide who may see what. They hand :meth:`FieldGuard.read` the type, the
field, the row's relation to the caller and a way to open the value; the guard decides once
per (type, field, relation) per request and applies that decision to each value cheaply.
The decision comes from ``security.policy`` (field-level authorization).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from security.identity.principal import Principal
from security.identity.roles import Purpose

T = TypeVar("T")


class Relation(StrEnum):
    """How a row relates to the caller; the strongest relation that holds is used."""

    SELF = "SELF"  # the patient's own row
    TREATING = "TREATING"  # the caller's institution treated the person recently
    CONSENTED = "CONSENTED"  # the person consented to the caller's institution, class, purpose
    BREAK_GLASS = "BREAK_GLASS"  # an emergency access granted, counted and flagged
    PHARMACY = "PHARMACY"  # a prescription circulated to (or a sale at) the caller's pharmacy
    REGION = "REGION"  # the row's insured or treatment region is the agency's
    NONE = "NONE"


class Decision(StrEnum):
    ALLOW = "ALLOW"
    MASK = "MASK"
    DENY = "DENY"


class FieldDenied(Exception):
    """Raised by :meth:`FieldGuard.read` for a DENY; the API turns it into FORBIDDEN_FIELD."""

    def __init__(self, type_name: str, field_name: str, reason: str) -> None:
        super().__init__(f"access to {type_name}.{field_name} denied: {reason}")
        self.type_name = type_name
        self.field_name = field_name
        self.reason = reason
        # graphql-core adopts these when the error is raised inside a resolver (gates).
        self.extensions = {
            "code": "FORBIDDEN_FIELD",
            "type": type_name,
            "field": field_name,
            "reason": reason,
        }


@dataclass
class AccessRecord:
    """What a request touched, per person pseudonym, for the audit log."""

    read: set[str] = field(default_factory=set)
    masked: set[str] = field(default_factory=set)
    denied: set[str] = field(default_factory=set)
    reasons: dict[str, str] = field(default_factory=dict)  # why each denied field was denied


Decider = Callable[[Principal, Purpose, str, str, Relation], tuple[Decision, str]]


NO_POLICY = "no policy decides this field"


def deny_all(
    _principal: Principal, _purpose: Purpose, _type: str, _field: str, _relation: Relation
) -> tuple[Decision, str]:
    """The decider of a guard built without one: nothing opens (fail closed)."""
    return Decision.DENY, NO_POLICY


class FieldGuard:
    def __init__(self, principal: Principal, purpose: Purpose, decider: Decider = deny_all):
        self.principal = principal
        self.purpose = purpose
        self._decider = decider
        self._decisions: dict[tuple[str, str, Relation], tuple[Decision, str]] = {}
        # The decision with its reason and the field's path, per (type, field, relation).
        self._admissions: dict[tuple[str, str, Relation], tuple[Decision, str, str]] = {}
        self.accesses: dict[str, AccessRecord] = {}
        # Set when any value was opened under break-glass; the audit log flags the request.
        self.break_glass = False
        self.break_glass_persons: set[str] = set()

    def decide(self, type_name: str, field_name: str, relation: Relation) -> tuple[Decision, str]:
        key = (type_name, field_name, relation)
        decision = self._decisions.get(key)
        if decision is None:
            try:
                decision = self._decider(
                    self.principal, self.purpose, type_name, field_name, relation
                )
            except Exception as exc:  # a decision that cannot be made is a denial
                decision = (Decision.DENY, f"policy error ({type(exc).__name__})")
            self._decisions[key] = decision
        return decision

    def admit(
        self,
        type_name: str,
        field_name: str,
        relation: Relation,
        person_ref: str | None,
        maskable: bool,
    ) -> Decision:
        """Decide and record one value's access: ALLOW (open it), MASK (open and mask it;
        only when ``maskable``), or raise :class:`FieldDenied`. Callers that open values
        themselves (projections, per row) use this; :meth:`read` wraps it."""
        key = (type_name, field_name, relation)
        found = self._admissions.get(key)
        if found is None:
            decision, reason = self.decide(type_name, field_name, relation)
            found = self._admissions[key] = (decision, reason, f"{type_name}.{field_name}")
        decision, reason, path = found
        record = self._record(person_ref)
        if decision is Decision.ALLOW:
            record.read.add(path)
        elif decision is Decision.MASK and maskable:
            record.masked.add(path)
        else:
            record.denied.add(path)
            record.reasons.setdefault(path, reason)
            raise FieldDenied(type_name, field_name, reason)
        if relation is Relation.BREAK_GLASS:
            self._flag_break_glass(person_ref)
        return decision

    def shows_row(
        self, type_name: str, row_field: str, relation: Relation, person_ref: str | None
    ) -> bool:
        """Whether a list may show a row at all (the caller may read its row field). A row it
        may not is left out of the list, so nothing of it reaches the caller, and recorded as
        a denial of that person's row field: the audit log names whose rows were kept back."""
        decision, reason = self.decide(type_name, row_field, relation)
        if decision is not Decision.DENY:
            return True
        path = f"{type_name}.{row_field}"
        record = self._record(person_ref)
        record.denied.add(path)
        record.reasons.setdefault(path, reason)
        return False

    def _record(self, person_ref: str | None) -> AccessRecord:
        record = self.accesses.get(person_ref or "")
        if record is None:  # setdefault would build a record per value on long lists
            record = self.accesses[person_ref or ""] = AccessRecord()
        return record

    def read(
        self,
        type_name: str,
        field_name: str,
        relation: Relation,
        person_ref: str | None,
        open_value: Callable[[], T],
        mask: Callable[[T], T] | None = None,
    ) -> T:
        decision = self.admit(type_name, field_name, relation, person_ref, mask is not None)
        if decision is Decision.MASK and mask is not None:
            return mask(open_value())
        return open_value()

    def _flag_break_glass(self, person_ref: str | None) -> None:
        self.break_glass = True
        if person_ref:
            self.break_glass_persons.add(person_ref)
