"""Checkpoints kept outside the gateway database, so the log's tail cannot be cut quietly.

Whoever can write the database can delete its newest events together with the checkpoint
rows that signed them. So every checkpoint the log signs is also

* appended to a file of signed notes (``<checkpoint_dir>/checkpoints.jsonl``, one JSON line
  ``{"size", "note", "at"}`` per checkpoint, fsynced; a directory the operator ships
  elsewhere, e.g. to write-once storage), and
* sent to each configured witness (C2SP tlog-witness ``add-checkpoint``, with a consistency
  proof from the size the witness last cosigned), which checks the log's signature and the
  proof and answers with its cosignature (``security.audit.cosign``); another medfed gateway
  can be that witness (``gateway.witness``).

``medfed audit verify`` then checks the database against the newest checkpoint it finds in
any of these places (:func:`newest_outside`). Witnesses are told in the background, newest
checkpoint only: a slow or absent witness never delays an append.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson

from security.audit.cosign import WitnessKey
from security.audit.note import Checkpoint, NoteError, open_checkpoint
from security.audit.signer import Verifier

if TYPE_CHECKING:
    from security.audit.settings import WitnessEntry

log = logging.getLogger("medfed.audit")
FILE_NAME = "checkpoints.jsonl"
SIZE_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class WitnessConfig:
    name: str  # for messages
    url: str  # the witness's submission prefix: POST <url>/add-checkpoint
    key: WitnessKey  # checks its cosignatures


class CheckpointFile:
    """The append-only file of signed notes in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME

    def append(self, size: int, note: str, cosigned_by: str | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {"size": size, "note": note, "at": datetime.now(UTC).isoformat()}
        if cosigned_by:
            record["cosigned_by"] = cosigned_by
        line = orjson.dumps(record) + b"\n"
        # One write() of one line with O_APPEND: workers appending at once do not interleave
        # lines, and a kill -9 leaves at most a last line cut short (skipped when read).
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def notes(self) -> Iterable[str]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a line cut short by a crash
                note = record.get("note") if isinstance(record, dict) else None
                if isinstance(note, str):
                    yield note


@dataclass(frozen=True)
class Found:
    checkpoint: Checkpoint
    note: str
    where: str  # for the report: the file, or the witness


def newest_in_file(
    directory: Path, verifiers: Sequence[Verifier], origin: str | None
) -> tuple[Found | None, list[str]]:
    """The largest checkpoint in the file whose signature verifies, and what was refused."""
    best: Found | None = None
    refused: list[str] = []
    store = CheckpointFile(directory)
    for note in store.notes():
        try:
            checkpoint = open_checkpoint(note, verifiers, origin)
        except NoteError as exc:
            refused.append(f"{store.path}: a note does not verify ({exc})")
            continue
        if best is None or checkpoint.size > best.checkpoint.size:
            best = Found(checkpoint, note, str(store.path))
    return best, refused


async def newest_at_witness(
    witness: WitnessConfig,
    verifiers: Sequence[Verifier],
    origin: str,
    client: httpx.AsyncClient,
) -> Found:
    """The checkpoint the witness last cosigned for ``origin``; raises on any failure."""
    response = await client.get(f"{witness.url}/checkpoint", params={"origin": origin})
    if response.status_code == 404:
        raise NoteError(f"witness {witness.name} has cosigned nothing for {origin}")
    response.raise_for_status()
    note = response.text
    checkpoint = open_checkpoint(note, verifiers, origin)
    witness.key.cosigned_at(note)
    return Found(checkpoint, note, f"witness {witness.name} ({witness.url})")


Proof = Callable[[int, int], Awaitable[list[bytes]]]  # (old size, new size) -> hashes


class WitnessClient:
    """Submits checkpoints to one witness (C2SP tlog-witness), remembering its size."""

    def __init__(self, witness: WitnessConfig, client: httpx.AsyncClient) -> None:
        self.witness = witness
        self.client = client
        self.known: int | None = None  # the size it last cosigned, once learnt

    async def submit(self, note: str, size: int, proof: Proof) -> str:
        """The witness's cosignature line(s) on ``note``; raises on refusal or failure."""
        for _ in range(2):  # a 409 teaches the witness's size; then once more
            old = self.known or 0
            path = await proof(old, size) if old else []
            body = f"old {old}\n" + "".join(f"{base64.b64encode(h).decode()}\n" for h in path)
            response = await self.client.post(
                f"{self.witness.url}/add-checkpoint", content=(body + "\n" + note).encode()
            )
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(
                SIZE_TYPE
            ):
                learnt = int(response.text.strip())
                if learnt == self.known or learnt > size:
                    raise NoteError(f"witness {self.witness.name} is at {learnt}, ahead of us")
                self.known = learnt
                continue
            response.raise_for_status()
            cosigned = note + response.text
            self.witness.key.cosigned_at(cosigned)
            self.known = size
            return response.text
        raise NoteError(f"witness {self.witness.name} did not settle on a size")


class Publisher:
    """Writes each new checkpoint outside the database: the file at once, the witnesses in
    the background (the newest pending checkpoint only)."""

    def __init__(
        self,
        directory: Path | None,
        witnesses: Sequence[WitnessConfig] = (),
        *,
        timeout: float = 5.0,
    ) -> None:
        self.file = CheckpointFile(directory) if directory is not None else None
        self.witnesses = list(witnesses)
        self.timeout = timeout
        self.proof: Proof | None = None  # set by the log: consistency proofs from its tree
        self._latest: tuple[int, str] | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._clients: list[WitnessClient] = []
        self.cosigned: dict[str, int] = {}  # witness name -> size it cosigned (for tests)
        self._writing: set[asyncio.Future[None]] = set()  # file appends on threads

    def _write(self, size: int, note: str) -> None:
        assert self.file is not None
        try:
            self.file.append(size, note)
        except OSError:
            # The database checkpoint stands; verify will name the file as stale.
            log.exception("checkpoint %d not written to %s", size, self.file.path)

    def published(self, size: int, note: str) -> None:
        """Called by the log with every checkpoint it stored."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self.file is not None:
            if loop is None:
                self._write(size, note)
            else:
                # Its fsync on a thread, not the event loop's (the database has it already).
                self._writing.add(write := loop.run_in_executor(None, self._write, size, note))
                write.add_done_callback(self._writing.discard)
        if not self.witnesses or self.proof is None or loop is None:
            return
        if self._latest is None or size > self._latest[0]:
            self._latest = (size, note)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._send_forever(), name="audit-witnesses")
        assert self._wake is not None
        self._wake.set()

    async def _send_forever(self) -> None:
        assert self._wake is not None
        http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        self._clients = [WitnessClient(w, http) for w in self.witnesses]
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._latest is None:
                    continue
                size, note = self._latest
                await asyncio.gather(*(self._send(c, size, note) for c in self._clients))
        finally:
            await http.aclose()

    async def _send(self, client: WitnessClient, size: int, note: str) -> None:
        assert self.proof is not None
        try:
            lines = await client.submit(note, size, self.proof)
        except Exception as exc:  # a witness down or refusing: logged, retried next time
            log.warning(
                "witness %s did not cosign checkpoint %d: %s", client.witness.name, size, exc
            )
            return
        self.cosigned[client.witness.name] = size
        if self.file is not None:
            try:
                self.file.append(size, note + lines, cosigned_by=client.witness.name)
            except OSError:
                log.exception("cosigned checkpoint %d not written", size)

    async def drain(self, within: float = 10.0) -> None:
        """Write and send what is pending, and stop (shutdown)."""
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)
        if self._task is None:
            return
        if self._latest is not None:
            size, note = self._latest
            try:
                async with asyncio.timeout(within):
                    await asyncio.gather(*(self._send(c, size, note) for c in self._clients))
            except TimeoutError:
                log.warning("witnesses not told of checkpoint %d before shutdown", size)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # stopping
            await self._task
        self._task = None


def describe(found: Found) -> str:
    return f"size {found.checkpoint.size} from {found.where}"


async def newest_outside(
    directory: Path,
    witnesses: Sequence[WitnessConfig],
    verifiers: Sequence[Verifier],
    origin: str,
    given: str | None = None,
) -> tuple[Found | None, list[str]]:
    """The newest checkpoint outside the database: in the file of notes in ``directory``, at
    each witness, or ``given`` (a note the caller kept); and one line per place that had
    none, could not be reached or was refused (those start with ``REFUSED``: a note outside
    that does not verify is evidence someone altered it)."""
    found, notes = [], []
    in_file, refused = newest_in_file(directory, verifiers, origin)
    notes += [f"REFUSED {line}" for line in refused]
    if in_file is not None:
        found.append(in_file)
    else:
        notes.append(f"no checkpoint in {directory}")
    async with httpx.AsyncClient(timeout=10) as client:
        for witness in witnesses:
            try:
                found.append(await newest_at_witness(witness, verifiers, origin, client))
            except NoteError as exc:
                notes.append(f"REFUSED witness {witness.name}: {exc}")
            except httpx.HTTPError as exc:
                notes.append(f"witness {witness.name} unreachable ({type(exc).__name__})")
    if given is not None:
        found.append(Found(open_checkpoint(given, verifiers, origin), given, "--checkpoint"))
    return max(found, key=lambda f: f.checkpoint.size, default=None), notes


def parse_witnesses(entries: Iterable[WitnessEntry]) -> list[WitnessConfig]:
    """``[[audit.witnesses]]`` (checked by :class:`WitnessEntry`) with their keys parsed."""
    return [WitnessConfig(e.name, e.url, WitnessKey.parse(e.key)) for e in entries]
