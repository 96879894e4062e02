"""The metrics server: ``/metrics`` on its own listen address, in the process that runs
``medfed serve`` (uvicorn's supervisor when there are workers), reading every worker's files.

A separate address is the protection: bind it to loopback or an operations network that
the public listener's clients cannot reach; the public app has no ``/metrics`` route.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from gateway.telemetry.metrics import registry

log = logging.getLogger("medfed.telemetry")


def serve_metrics(host: str, port: int) -> None:
    start_http_server(port, addr=host, registry=registry())
    log.info("metrics on http://%s:%d/metrics", host, port)
