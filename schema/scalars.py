"""Strawberry's Date, DateTime and Decimal, refusing values the rest of the stack cannot hold.

A value a client can send must be answered as ``BAD_USER_INPUT`` at its path, never as an
overflow deep in a resolver: ``0001-01-01T00:00:00+08:00`` is a valid ISO time that has no
UTC equivalent, ``9999-12-31T23:59:59-08:00`` one past year 9999 in UTC, and ``1e999999``
a valid decimal that overflows every arithmetic context. The names, descriptions and
serialisation stay Strawberry's (the SDL is unchanged); only parsing is stricter, and the
error it raises becomes an input error at the variable's path (``schema.client_errors``), with
its ``why`` as the reason and never the value.

Dates and times must lie in ``YEARS`` (far wider than any insurance record, far from the
calendar's edges in every time zone); finite decimals must lie within ``DECIMAL_EXPONENT``
orders of magnitude of one (NaN and infinities, and amounts, are checked by the mutations).
"""

from __future__ import annotations

import dataclasses
import decimal
from datetime import UTC, date, datetime
from typing import Any

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import (
    DateDefinition,
    DateTimeDefinition,
    DecimalDefinition,
)
from strawberry.types.scalar import ScalarDefinition

from schema import times

YEARS = range(1900, 2200)
DECIMAL_EXPONENT = 30  # |adjusted exponent| at most this: 1e30 yuan, or 1e-30


class OutOfRange(ValueError):
    """A value that parses but that the gateway cannot hold. ``why`` says so without the
    value (error messages never repeat what the client sent: it may be personal)."""

    def __init__(self, kind: str, why: str = "") -> None:
        super().__init__(f"Value cannot represent a {kind}. {why}".strip())
        self.why = why


def _refuse(kind: str, _value: object, why: str) -> OutOfRange:
    return OutOfRange(kind, why)


def _parsed(kind: str, parse: Any, value: object) -> Any:
    # A plain ValueError, not Strawberry's GraphQLError: graphql-core then reports a bad
    # literal with its node (so its argument path can be named) as it does a variable.
    # Strawberry's message quotes the value: not kept.
    try:
        return parse(value)
    except StrawberryInputCoercionError:
        raise OutOfRange(kind) from None


def _years(kind: str, value: object, year: int) -> None:
    if year not in YEARS:
        raise _refuse(kind, value, f"It must lie in the years {YEARS.start}-{YEARS.stop - 1}.")


def _checked_datetime(parse: Any):
    def inner(value: object) -> datetime:
        moment = _parsed("DateTime", parse, value)
        _years("DateTime", value, moment.year)
        if moment.tzinfo is not None:
            try:
                _years("DateTime", value, moment.astimezone(UTC).year)
            except OverflowError:
                raise _refuse("DateTime", value, "It has no UTC equivalent.") from None
        return moment

    return inner


def _checked_date(parse: Any):
    def inner(value: object) -> date:
        day = _parsed("Date", parse, value)
        _years("Date", value, day.year)
        return day

    return inner


def _checked_decimal(parse: Any):
    def inner(value: object) -> decimal.Decimal:
        number = _parsed("Decimal", parse, value)
        if number.is_finite() and number and abs(number.adjusted()) > DECIMAL_EXPONENT:
            raise _refuse(
                "Decimal", value, f"It is out of range (at most 1e{DECIMAL_EXPONENT} in magnitude)."
            )
        return number

    return inner


def _override(definition: ScalarDefinition, check: Any, **more: Any) -> ScalarDefinition:
    assert definition.parse_value is not None
    return dataclasses.replace(definition, parse_value=check(definition.parse_value), **more)


def _serialize_datetime(value: datetime) -> str:
    return times.answered(value)


SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {
    # Answered at +08:00 always (schema/times.py); parsing stays Strawberry's, range-checked.
    datetime: _override(DateTimeDefinition, _checked_datetime, serialize=_serialize_datetime),
    date: _override(DateDefinition, _checked_date),
    decimal.Decimal: _override(DecimalDefinition, _checked_decimal),
}
