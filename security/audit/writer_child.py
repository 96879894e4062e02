"""The audit writer process itself: :func:`main` with the configuration as its argument.

It reads requests from stdin and answers on stdout, one reply per request, in order; the
protocol is described in :mod:`security.audit.writer_process`, which starts it. It
exits when stdin closes.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from security import failpoints
from security.audit.leaves import Derive
from security.audit.sqlite_append import SqliteAppender

log = logging.getLogger("medfed.audit.writer")
LENGTH = struct.Struct(">I")  # each frame: this length, then the payload


def resolve(path: str | None) -> Derive | None:
    """The function named ``module:qualname``."""
    if path is None:
        return None
    module, _, name = path.partition(":")
    found: Any = importlib.import_module(module)
    for part in name.split("."):
        found = getattr(found, part)
    return found


def serve(appender: SqliteAppender, requests: BinaryIO, replies: BinaryIO) -> None:
    while True:
        header = requests.read(LENGTH.size)
        if len(header) < LENGTH.size:
            return  # the gateway closed the pipe (or died)
        (length,) = LENGTH.unpack(header)
        payload = requests.read(length)
        if len(payload) < length:
            return
        try:
            reply = handle(appender, payload)
        except Exception as exc:
            log.exception("audit writer: request failed")
            reply = orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
        write_frame(replies, reply)


def handle(appender: SqliteAppender, payload: bytes) -> bytes:
    kind, body = payload[:1], payload[1:]
    if kind == b"A":
        failpoints.reach_sync("audit_writer.received")  # fault tests: nothing written yet
        done = appender.append(body.split(b"\n")).to_json()
        failpoints.reach_sync("audit_writer.committed")  # committed, not yet acknowledged
        return done
    if kind == b"C":
        raw = orjson.loads(body)
        appender.add_checkpoint(raw["size"], bytes.fromhex(raw["root"]), raw["note"])
        return b'{"ok":true}'
    raise ValueError(f"unknown request {kind!r}")


def write_frame(out: BinaryIO, payload: bytes) -> None:
    out.write(LENGTH.pack(len(payload)) + payload)
    out.flush()


def main(argv: list[str]) -> int:
    # The gateway's log set-up (JSON lines), named by the environment it passed down.
    setup = os.environ.get("MEDFED_LOG_SETUP")
    if setup:
        resolve(setup)()
    else:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
            stream=sys.stderr,
        )
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the gateway
    # then drains its pending appends through this process and closes its stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The protocol owns the real stdout; anything printed by accident goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    try:
        config = orjson.loads(argv[0])
        appender = SqliteAppender(
            Path(config["path"]),
            full_sync=config["full_sync"],
            checkpoint_every=config["checkpoint_every"],
            derive=resolve(config["derive"]),
        )
    except Exception as exc:
        write_frame(replies, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    write_frame(replies, b'{"ready":true}')
    try:
        serve(appender, requests, replies)
    finally:
        appender.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
