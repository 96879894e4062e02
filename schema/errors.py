"""Typed GraphQL errors: every error the API returns carries ``extensions.code``."""

from __future__ import annotations

from graphql import GraphQLError

SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
FORBIDDEN = "FORBIDDEN"
FORBIDDEN_FIELD = "FORBIDDEN_FIELD"
BAD_USER_INPUT = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"
IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
TRANSITION_CONFLICT = "TRANSITION_CONFLICT"  # an e-prescription moved meanwhile


def bad_input(message: str, problems: list[dict] | None = None) -> GraphQLError:
    """One error for a whole input: every problem listed with its path and reason."""
    extensions: dict = {"code": BAD_USER_INPUT}
    if problems:
        extensions["problems"] = problems
    return GraphQLError(message, extensions=extensions)


def forbidden(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": FORBIDDEN})
