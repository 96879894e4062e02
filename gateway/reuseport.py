"""Several uvicorn workers, each listening on a socket of its own (``SO_REUSEPORT``).

With uvicorn's own ``--workers`` every worker waits on the one socket the parent bound, and
asyncio accepts every connection queued when its loop wakes: a burst of keep-alive clients
lands on whichever worker woke first, and the others stay idle (two workers served 0.98-1.08×
one at eight clients). With one socket per worker in a ``SO_REUSEPORT`` group the kernel
spreads new connections over the workers' own accept queues by the connection's address
hash, so each worker gets its share whether or not it is awake at that moment.

The supervision (start, health checks, restart of a dead worker, signals) stays uvicorn's:
its worker class is swapped for one that binds its own socket when it starts. The parent
binds none, so no socket of the group is left without a process accepting on it; a worker
that dies takes its socket with it, and its replacement joins the group afresh.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from uvicorn import Config
from uvicorn.supervisors import multiprocess


def reuse_port_available() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (``host``, ``port``) in that address's ``SO_REUSEPORT`` group
    (only sockets of the same user may join it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class OwnSocketWorker(multiprocess.Process):
    """A uvicorn worker that listens on a ``SO_REUSEPORT`` socket it binds itself."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        # Runs in the worker process (uvicorn starts workers with "spawn").
        super().target([reuse_port_socket(self.config.host, self.config.port)])


@contextlib.contextmanager
def _own_socket_workers() -> Iterator[None]:
    original = multiprocess.Process
    multiprocess.Process = OwnSocketWorker  # type: ignore[misc]
    try:
        yield
    finally:
        multiprocess.Process = original  # type: ignore[misc]


def serve_workers(config: Config) -> None:
    """Serve ``config`` (``workers`` > 1) under uvicorn's supervisor, each worker on its own
    socket of the ``SO_REUSEPORT`` group of the configured address."""
    if not isinstance(getattr(multiprocess, "Process", None), type) or not issubclass(
        OwnSocketWorker, multiprocess.Process
    ):
        raise RuntimeError("this uvicorn has no worker class to give its own socket")
    # Fail now, with the address in the message, if it cannot be bound at all; port 0 (any
    # free port) is resolved here, so every worker joins the same one.
    probe = reuse_port_socket(config.host, config.port)
    config.port = probe.getsockname()[1]
    probe.close()
    with _own_socket_workers():
        multiprocess.Multiprocess(config, sockets=[]).run()
