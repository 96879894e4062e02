"""Errors a client causes, said without repeating what it sent.

graphql-core quotes the submitted value in its coercion and literal errors (``String cannot
represent a non string value: ['330302…']``), and its parser quotes the offending token; a
value may be an ID number or a diagnosis, and errors reach logs, routers and audit codes.
Here every such error is rewritten to name the variable or argument, the path inside it and
the expected type, never the value; every error a client can cause gets an
``extensions.code``; suggestions ("Did you mean …") are dropped outside dev mode.

* :func:`sanitize` rewrites a list of errors in place (``MedfedSchema.process_errors`` calls
  it before anything logs or answers them) and returns the errors that were not caused by the
  client, which alone are logged as unexpected.
* :class:`SafeValuesOfCorrectTypeRule` replaces graphql-core's ``ValuesOfCorrectTypeRule``
  (literal values in the query text) and :class:`SafeValueRules` swaps it in.

Codes: ``GRAPHQL_PARSE_FAILED`` (syntax), ``GRAPHQL_VALIDATION_FAILED`` (the document does
not fit the schema), ``BAD_USER_INPUT`` (a value that does not fit its type, or a request
graphql-core refuses before executing), ``INTERNAL`` (not the client's doing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import (
    ArgumentNode,
    GraphQLError,
    GraphQLInputType,
    GraphQLSchema,
    GraphQLSyntaxError,
    ObjectFieldNode,
    ValueNode,
    VariableDefinitionNode,
    get_nullable_type,
    is_input_object_type,
    is_list_type,
    type_from_ast,
)
from graphql.language import SKIP, VisitorAction
from graphql.pyutils import Undefined
from graphql.utilities.validate_input_value import validate_input_literal, validate_input_value
from graphql.validation import ValuesOfCorrectTypeRule
from strawberry.extensions import SchemaExtension

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL"
CLIENT_CODES = frozenset({PARSE_FAILED, VALIDATION_FAILED, BAD_USER_INPUT})

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
# "Expected ':', found String '330302…'." : the token's kind stays, its text goes.
_TOKEN = re.compile(r"\b(Name|Int|Float|String|BlockString|Comment) '.*'(\.?)$", re.S)
_REQUIRED_FIELD = re.compile(r"to include required field '([_A-Za-z][_0-9A-Za-z]*)'")

Path = Sequence[str | int]


# -- one problem of a value, in words that carry none of it -------------------------------------


def _type_at(type_: Any, path: Path) -> Any:
    """The input type at ``path`` inside a value of ``type_`` (paths only hold indexes and
    defined field names)."""
    for key in path:
        nullable = get_nullable_type(type_)
        if is_list_type(nullable) and isinstance(key, int):
            type_ = nullable.of_type
        elif is_input_object_type(nullable) and isinstance(key, str) and key in nullable.fields:
            type_ = nullable.fields[key].type
        else:
            break
    return type_


def _reason(error: GraphQLError, type_: Any) -> str:
    """Why a value is wrong, from graphql-core's verdict, with only schema names in it."""
    message = error.message
    named = get_nullable_type(type_)
    if message.startswith("Expected a value of non-null type") or message.endswith(
        "not to be None."
    ):
        return f"a value of type {type_} is required"
    if "to be an object" in message:
        return f"expected an object of type {named}"
    required = _REQUIRED_FIELD.search(message)
    if required and is_input_object_type(named) and required.group(1) in named.fields:
        return f"the required field '{required.group(1)}' of {named} is missing"
    if "not to include unknown field" in message:
        # The unknown name is what the client sent: not repeated.
        return f"a field that {named} does not define was given"
    if message.startswith("Expected variable '$") or message.startswith("Within OneOf"):
        return _SUGGESTION.sub("", message)  # names a variable or a type, never a value
    why = getattr(error.original_error, "why", "")  # a scalar's own value-free reason
    return f"expected a value of type {type_}" + (f": {why}" if why else "")


def _where(path: Path) -> str:
    text = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
    return f" at '{text}'" if text else ""


def _problems(value: Any, type_: GraphQLInputType) -> list[tuple[list[str | int], str]]:
    found: list[tuple[list[str | int], str]] = []

    def on_error(error: GraphQLError, path: list[str | int]) -> None:
        found.append((list(path), _reason(error, _type_at(type_, path))))

    try:
        validate_input_value(value, type_, on_error, hide_suggestions=True)
    except RecursionError:
        found.append(([], "the value is nested too deeply"))
    return found


# -- rewriting the errors of one request ---------------------------------------------------------


def sanitize(
    errors: list[GraphQLError],
    *,
    schema: GraphQLSchema,
    variables: dict[str, Any] | None,
    dev: bool,
    executed: bool,
    request_id: str | None = None,
) -> list[GraphQLError]:
    """Rewrite ``errors`` in place: no submitted value in any message, a code on every error,
    no suggestion outside dev mode. Returns the errors that had no code and are not the
    client's doing (to be logged as unexpected); they answer ``INTERNAL``, masked outside dev
    mode. ``executed``: whether execution began (else these are parse or validation
    errors). Idempotent: an error with a code is left as it is."""
    unexpected: list[GraphQLError] = []
    rewritten: list[GraphQLError] = []
    variables_done: set[str] = set()
    for error in errors:
        extensions = error.extensions if isinstance(error.extensions, dict) else {}
        if extensions.get("code"):
            rewritten.append(error)
            continue
        if isinstance(error, GraphQLSyntaxError) or (
            isinstance(error.original_error, GraphQLSyntaxError)
        ):
            _recode(error, _TOKEN.sub(r"\1\2", error.message), PARSE_FAILED)
            rewritten.append(error)
        elif not executed:
            # The document does not fit the schema (values in it were checked by
            # SafeValuesOfCorrectTypeRule, so no message here quotes one).
            _recode(error, error.message, VALIDATION_FAILED)
            rewritten.append(error)
        elif _is_variable_error(error):
            rewritten += _variable_errors(error, schema, variables or {}, variables_done)
        elif not error.path and error.original_error is None:
            # A request graphql-core refused before executing (the operation name).
            _recode(error, error.message, BAD_USER_INPUT)
            rewritten.append(error)
        else:
            unexpected.append(error)
            masked = (
                error.message
                if dev
                else "internal error"
                + (f" (logged under request id {request_id})" if request_id else "")
            )
            error.extensions = {**extensions, "code": INTERNAL}
            error.message = masked
            rewritten.append(error)
    if not dev:
        for error in rewritten:
            error.message = _SUGGESTION.sub("", error.message)
    errors[:] = rewritten
    return unexpected


def _recode(error: GraphQLError, message: str, code: str) -> None:
    error.message = message
    error.extensions = {**(error.extensions or {}), "code": code}
    # The original may quote the value; nothing downstream needs it.
    error.original_error = None


def _is_variable_error(error: GraphQLError) -> bool:
    if error.path:
        return False
    nodes = error.nodes or ()
    if nodes and isinstance(nodes[0], VariableDefinitionNode):
        return True
    return error.message.startswith(
        (
            "Variable '$",
            "Variable values are nested too deeply",
            "Too many errors processing variables",
        )
    )


def _variable_errors(
    error: GraphQLError,
    schema: GraphQLSchema,
    variables: dict[str, Any],
    done: set[str],
) -> Iterator[GraphQLError]:
    nodes = error.nodes or ()
    definition = nodes[0] if nodes and isinstance(nodes[0], VariableDefinitionNode) else None
    if definition is None:
        # The error limit or nesting depth: no value in it.
        _recode(error, _SUGGESTION.sub("", error.message), BAD_USER_INPUT)
        yield error
        return
    name = definition.variable.name.value
    if name in done:
        return  # every problem of this variable was reported with its first error
    done.add(name)
    type_ = type_from_ast(schema, definition.type)
    value = variables.get(name, Undefined)
    if type_ is None:  # an unknown type: validation reports it; nothing of the value here
        problems = [([], "its type is not an input type of this schema")]
    elif value is Undefined:
        problems = [([], f"a value of type {type_} is required")]
    else:
        problems = _problems(value, type_) or [([], f"expected a value of type {type_}")]
    for path, reason in problems:
        yield GraphQLError(
            f"Variable '${name}' has an invalid value{_where(path)}: {reason}",
            nodes=definition,
            extensions={
                "code": BAD_USER_INPUT,
                "variable": name,
                "problems": [{"path": [name, *path], "reason": reason}],
            },
        )


# -- literal values in the query text ------------------------------------------------------------


def _noting_parent(kind: str) -> Any:
    checked = getattr(ValuesOfCorrectTypeRule, f"enter_{kind}_value")

    def enter(self: Any, node: Any, *args: Any) -> Any:
        # Visitor arguments: key, parent, path, ancestors.
        self._parent = args[1] if len(args) > 1 else None
        return checked(self, node, *args)

    return enter


class SafeValuesOfCorrectTypeRule(ValuesOfCorrectTypeRule):
    """graphql-core's rule, reporting which argument and path is wrong and what type it
    needs, without printing the literal (``person(idNumber: 330302…)``)."""

    _parent: Any = None  # what holds the value being checked (an argument, a default)
    enter_null_value = _noting_parent("null")
    enter_list_value = _noting_parent("list")
    enter_object_value = _noting_parent("object")
    enter_enum_value = _noting_parent("enum")
    enter_int_value = _noting_parent("int")
    enter_float_value = _noting_parent("float")
    enter_string_value = _noting_parent("string")
    enter_boolean_value = _noting_parent("boolean")

    def is_valid_value_node(
        self, node: ValueNode, input_type: GraphQLInputType | None
    ) -> VisitorAction:
        if not input_type:
            return SKIP
        owner, root = _owner(self._parent)

        def on_error(error: GraphQLError, path: list[str | int]) -> None:
            reason = _reason(error, _type_at(input_type, path))
            self.report_error(
                GraphQLError(
                    f"{owner} has an invalid value{_where(path)}: {reason}",
                    node,
                    extensions={
                        "code": BAD_USER_INPUT,
                        "problems": [{"path": [*root, *path], "reason": reason}],
                    },
                )
            )

        validate_input_literal(node, input_type, on_error, None, None, True)
        return SKIP


def _owner(parent: Any) -> tuple[str, list[str | int]]:
    """Who holds a literal, in words and as the start of its problem path."""
    if isinstance(parent, ArgumentNode):
        return f"Argument '{parent.name.value}'", [parent.name.value]
    if isinstance(parent, VariableDefinitionNode):
        name = parent.variable.name.value
        return f"The default value of '${name}'", [name]
    if isinstance(parent, ObjectFieldNode):
        return f"Field '{parent.name.value}'", [parent.name.value]
    return "A value", []


class SafeValueRules(SchemaExtension):
    """Validate literal values with :class:`SafeValuesOfCorrectTypeRule` in place of
    graphql-core's own rule (the same class every request, so ``ValidationCache`` holds)."""

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        ctx.validation_rules = tuple(
            SafeValuesOfCorrectTypeRule if rule is ValuesOfCorrectTypeRule else rule
            for rule in ctx.validation_rules
        )
        yield
