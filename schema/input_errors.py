"""Give every error about a value the client sent ``BAD_USER_INPUT`` and the value's path.

graphql-core reports a variable it cannot coerce (a malformed or out-of-range date, an Int
beyond 32 bits, a float beyond double range, a missing required field) as a message only:
``Variable '$input' has invalid value at .collectedAt: …``; and a literal argument it cannot
parse as a validation error ``Expected value of type …`` located in the document. Both are
answers to the caller, so they get the same shape as a mutation's own validation errors:
``extensions.code = BAD_USER_INPUT`` and ``extensions.problems = [{path, reason}]``, where
the path starts with the variable's name, or with the argument's for a literal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError
from graphql.language import ArgumentNode, DocumentNode, ListValueNode, ObjectValueNode, Visitor
from graphql.language.visitor import BREAK, visit

BAD_USER_INPUT = "BAD_USER_INPUT"
# graphql-core's own wording (graphql/execution/values.py); variable and field names are
# GraphQL names, so the path part cannot be confused with the value or the reason.
_VARIABLE = re.compile(r"^Variable '\$(?P<var>[_A-Za-z]\w*)' (?P<rest>.*)$", re.DOTALL)
_AT_PATH = re.compile(
    r"^has invalid value(?: at (?P<path>(?:\.[_A-Za-z]\w*|\[\d+\])+))?: (?P<why>.*)$", re.DOTALL
)
_STEP = re.compile(r"\.([_A-Za-z]\w*)|\[(\d+)\]")
_LITERAL = "Expected value of type "
_ENCOUNTERED = re.compile(r"but encountered error '(?P<why>.*)'; found", re.DOTALL)


def _reason(text: str) -> str:
    """The scalar's own words where graphql-core wrapped them."""
    found = _ENCOUNTERED.search(text)
    return found["why"] if found else text


def _variable_problem(match: re.Match[str]) -> dict[str, Any]:
    path: list[str | int] = [match["var"]]
    rest = match["rest"]
    at = _AT_PATH.match(rest)
    if at is None:
        return {"path": path, "reason": rest}
    for name, index in _STEP.findall(at["path"] or ""):
        path.append(name if name else int(index))
    return {"path": path, "reason": _reason(at["why"])}


def _within(value: Any, target: Any, steps: list[str | int]) -> list[str | int] | None:
    """The steps from an argument's value down to ``target``, if it is inside."""
    if value is target:
        return steps
    if isinstance(value, ObjectValueNode):
        for field in value.fields:
            found = _within(field.value, target, [*steps, field.name.value])
            if found is not None:
                return found
    elif isinstance(value, ListValueNode):
        for i, item in enumerate(value.values):
            found = _within(item, target, [*steps, i])
            if found is not None:
                return found
    return None


class _Locate(Visitor):
    """The argument path of one value node in a document."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target
        self.found: list[str | int] | None = None

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> Any:
        self.found = _within(node.value, self.target, [node.name.value])
        return BREAK if self.found is not None else None


def literal_path(document: DocumentNode | None, node: Any) -> list[str | int] | None:
    if document is None or node is None:
        return None
    locate = _Locate(node)
    visit(document, locate)
    return locate.found


def tag_input_errors(errors: Iterable[GraphQLError], document: DocumentNode | None) -> None:
    """Mark the errors about client values in place (before they are logged or sent)."""
    for error in errors:
        if (error.extensions or {}).get("code"):
            continue
        message = error.message
        if (match := _VARIABLE.match(message)) is not None:
            problem = _variable_problem(match)
        elif message.startswith(_LITERAL):
            where = literal_path(document, error.nodes[0] if error.nodes else None)
            problem = {"path": where or [], "reason": _reason(message)}
        else:
            continue
        error.extensions = {
            **(error.extensions or {}),
            "code": BAD_USER_INPUT,
            "problems": [problem],
        }
