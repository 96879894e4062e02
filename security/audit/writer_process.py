"""The SQLite audit writer: a child process of each gateway process, and its protocol.

Why a process: on a thread, the append's own Python work (hashing, rows, binding) and
every return from SQLite needed the GIL the event loop was using, so a busy gateway paid
for its audit log twice, in loop time and in waiting for the lock to change hands. The
child has its own interpreter: the loop only writes the batch to a pipe and reads the
receipt, and the commit, its fsync included, runs on another core.

Protocol, over the child's stdin and stdout: frames of a 4-byte big-endian length and a
payload. The first frame from the child is ``{"ready": true}`` or ``{"error": ...}``. Then
each request gets exactly one reply, in order:

* ``A`` + the events' canonical JSON joined by newlines (canonical JSON has none inside)
  -> :class:`Appended` as JSON, once the batch is committed;
* ``C`` + ``{"size", "root", "note"}`` -> ``{"ok": true}``, once the checkpoint is stored;
* any failure -> ``{"error": "..."}``; the transaction was rolled back.

The child (:mod:`security.audit.writer_child`) exits when its stdin closes, which is also
what happens when the gateway dies: an append in flight then either committed or did not,
and only committed ones were ever acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from security.audit.leaves import Derive
from security.audit.sqlite_append import Appended
from security.audit.writer_child import LENGTH, resolve
from security.errors import MedfedError

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Not ``-m``: that would import the module a second time as __main__ (the package imports it).
_CHILD = "import sys; from security.audit.writer_child import main; sys.exit(main(sys.argv[1:]))"


class WriterError(MedfedError):
    """The writer did not store the request: it failed, or the process is gone."""


class WriterGone(WriterError):
    """The process died with the request in flight: it may or may not have committed."""


def _callable_path(function: Derive | None) -> str | None:
    if function is None:
        return None
    path = f"{function.__module__}:{function.__qualname__}"
    if resolve(path) is not function:
        raise ValueError(f"the audit derive hook {path} is not importable by name")
    return path


class WriterProcess:
    """The gateway side: one child per instance, started on first use, one request at a
    time (replies come back in order)."""

    def __init__(
        self, path: Path, *, full_sync: bool, checkpoint_every: int, derive: Derive | None = None
    ) -> None:
        self.path = path
        self.full_sync = full_sync
        self.checkpoint_every = checkpoint_every
        self.derive = derive
        self._proc: asyncio.subprocess.Process | None = None
        self._abandon = weakref.finalize(self, lambda: None)
        self._lock: asyncio.Lock | None = None

    def _guard(self) -> asyncio.Lock:
        """One exchange with the child at a time (made in the loop that first uses it)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def append(self, event_jsons: Sequence[bytes]) -> Appended:
        reply = await self._call(b"A" + b"\n".join(event_jsons))
        return Appended.from_json(reply)

    async def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        await self._call(b"C" + orjson.dumps({"size": size, "root": root.hex(), "note": note}))

    async def start(self) -> None:
        """Start the child now rather than on the first append."""
        async with self._guard():
            await self._started()

    async def _call(self, payload: bytes) -> dict[str, Any]:
        async with self._guard():
            proc = await self._started()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(LENGTH.pack(len(payload)) + payload)
                reply = await _read_frame(proc.stdout)
            except BaseException as exc:
                # Gone, or the caller was cancelled mid-exchange: either way the next reply
                # could belong to this request, so this child is not trusted again.
                await self._discard()
                if isinstance(exc, (ConnectionError, asyncio.IncompleteReadError)):
                    raise WriterGone(f"the audit writer process stopped: {exc!r}") from exc
                raise
        if "error" in reply:
            raise WriterError(reply["error"])
        return reply

    async def _started(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        await self._discard()
        config = orjson.dumps(
            {
                "path": str(self.path),
                "full_sync": self.full_sync,
                "checkpoint_every": self.checkpoint_every,
                "derive": _callable_path(self.derive),
            }
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")])
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            config,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        try:
            hello = await _read_frame(proc.stdout)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            await _stop(proc)
            raise WriterError(f"the audit writer process did not start: {exc!r}") from exc
        if not hello.get("ready"):
            await _stop(proc)
            raise WriterError(f"the audit writer process did not start: {hello.get('error')}")
        self._proc = proc
        # An owner dropped without close() (a test's app, say) must not leave its writer
        # behind for the life of this process: nothing can be waiting on it any more.
        self._abandon = weakref.finalize(self, _kill, proc.pid)
        return proc

    async def _discard(self) -> None:
        self._abandon.detach()
        proc, self._proc = self._proc, None
        if proc is not None:
            await _stop(proc, kill=True)

    async def close(self) -> None:
        """Let the child finish what it has and exit."""
        async with self._guard():
            self._abandon.detach()
            proc, self._proc = self._proc, None
            if proc is not None:
                await _stop(proc)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def _read_frame(stream: asyncio.StreamReader) -> dict[str, Any]:
    (length,) = LENGTH.unpack(await stream.readexactly(LENGTH.size))
    return orjson.loads(await stream.readexactly(length))


async def _stop(proc: asyncio.subprocess.Process, kill: bool = False) -> None:
    if kill and proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    if proc.stdin is not None:
        with contextlib.suppress(Exception):
            proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
