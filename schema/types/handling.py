"""The states and actions of graded handling, shared by access alerts and supervision
warnings (the model is :mod:`security.audit.alert_state`; a test holds both to one set of
names)."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(
    description="Where a warning or an alert stands: OPEN → ACKNOWLEDGED → RESOLVED (a "
    "confirmed violation) | FALSE_POSITIVE; OPEN may be closed directly; a closed one stays "
    "closed."
)
class WarningState(Enum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"
    FALSE_POSITIVE = "FALSE_POSITIVE"


@strawberry.enum(description="What a handler does to a warning or an alert.")
class WarningAction(Enum):
    ASSIGN = "ASSIGN"
    ACKNOWLEDGE = "ACKNOWLEDGE"
    RESOLVE = "RESOLVE"
    FALSE_POSITIVE = "FALSE_POSITIVE"
