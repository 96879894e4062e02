"""The gateway's own database (audit log, consents, idempotency keys): one declarative base.

Modules that keep tables there subclass :class:`GatewayBase`; :func:`gateway_metadata`
imports them all so migrations and ``create_all`` see every table.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Modules defining GatewayBase tables; each adds itself here when it is written.
GATEWAY_MODEL_MODULES: tuple[str, ...] = ("security.audit.models",)


class GatewayBase(DeclarativeBase):
    pass


def gateway_metadata() -> MetaData:
    for module in GATEWAY_MODEL_MODULES:
        importlib.import_module(module)
    return GatewayBase.metadata
