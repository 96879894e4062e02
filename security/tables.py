"""The base of every typed table of ``medfed.toml``.

Each component declares its own table beside its code (``[audit]`` in security.audit,
``[health]`` in connectors.health, ``[limits]``' query part in schema.limits) and
``gateway.config`` assembles them into the one settings model; this module sits in the lowest
layer so that every package may subclass it. A table is strict: a wrong type is refused, not
coerced (``max_batch = "5"`` is a mistake in a file), an unknown key is refused, and nothing
changes it once read. A rule between keys is :meth:`Table.mistake`, so that its
message still names one key. Environment overrides are text; pydantic-settings converts them by the
field's type before the same checks run.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["NonEmpty", "Seconds", "Table"]


class Table(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def mistake(self) -> tuple[str, str] | None:
        """A rule across keys, checked once the keys themselves are: ``(key, problem)`` naming
        the key to fix (relative to this table), or None. The loader asks every table."""
        return None


NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]
Seconds = Annotated[float, Field(gt=0)]
