"""JSON logs in every process: the gateway, each ``--workers`` process, the audit writer
child and uvicorn's own loggers, all through :class:`gateway.edge.logs.JsonFormatter` on
standard error.

uvicorn configures logging itself in every worker it spawns (from the ``log_config`` it is
handed), so :func:`log_config` is what ``medfed serve`` passes it; the audit writer child
finds its set-up through ``MEDFED_LOG_SETUP``, which it inherits (security imports nothing
of the gateway).
"""

from __future__ import annotations

import logging.config
import os
from typing import Any

LOG_SETUP_ENV = "MEDFED_LOG_SETUP"
LOG_LEVEL_ENV = "MEDFED_LOG_LEVEL"
_SETUP = "gateway.telemetry.logs:configure_json_logging"
# uvicorn's loggers hand their records to the root handler instead of their own.
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary (uvicorn's ``log_config``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "gateway.edge.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {name: {"handlers": [], "propagate": True, "level": level} for name in _UVICORN},
    }


def configure_json_logging(level: str | None = None) -> None:
    """JSON lines on standard error for this process and the children it starts."""
    level = (level or os.environ.get(LOG_LEVEL_ENV) or "INFO").upper()
    logging.config.dictConfig(log_config(level))
    os.environ[LOG_SETUP_ENV] = _SETUP
    os.environ[LOG_LEVEL_ENV] = level
