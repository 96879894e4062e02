"""Real processes racing on one data directory's key files, released at the same moment.

The processes are forked from the test (``multiprocessing`` with the ``fork`` start method):
each is a separate process with its own memory and file descriptors, exactly as a gateway
and its subgraphs are, but it starts with everything imported, so many rounds fit in a test
run. A barrier releases them together, so they create, migrate or rewrite the key files at
the same moment. Actions, as the real commands do them:

``("open", NAME)``      open the keyring as ``medfed demo build`` and the gateway do
                        (``KeyRing.open``, where ``gateway.startup.open_keyring`` ends: it
                        creates or migrates), add a source of its own, and encrypt a value
                        under it and under the shared source;
``("rotate-kek",)``     ``medfed keys rotate --kek``;
``("retire-kek", ID)``  ``medfed keys retire ID`` for a KEK.

Each process reports ``{"ok": True, "values": [...]}`` or ``{"ok": False, "error": "..."}``.
"""

from __future__ import annotations

import base64
import multiprocessing
from pathlib import Path
from typing import Any

from security.crypto import FieldCipher, KeyRing

SHARED_SOURCE = "bureau-zj"
CELL = {"table": "persons", "column": "name_enc"}
_fork = multiprocessing.get_context("fork")


def act(data_dir: Path, action: tuple[str, ...]) -> list[dict[str, str]]:
    verb, *args = action
    ring = KeyRing.open(data_dir, create=verb == "open")
    if verb == "open":
        cipher, values = FieldCipher(ring), []
        for source in (f"src-{args[0]}", SHARED_SOURCE):
            ring.ensure_source(source)
            row_key = f"{args[0]}-{source}"
            blob = cipher.encrypt(args[0], source=source, row_key=row_key, **CELL)
            values.append(
                {"source": source, "row_key": row_key, "plain": args[0], "blob": b64(blob)}
            )
        return values
    if verb == "rotate-kek":
        ring.rotate_kek()
    elif verb == "retire-kek":
        ring.retire_kek(args[0])
    else:
        raise ValueError(f"unknown action {verb}")
    return []


def b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()


def _child(data_dir: Path, action: tuple[str, ...], barrier: Any, results: Any) -> None:
    barrier.wait(timeout=30)
    try:
        results.put((action, {"ok": True, "values": act(data_dir, action)}))
    except Exception as exc:  # reported to the test, which fails on it
        results.put((action, {"ok": False, "error": f"{type(exc).__name__}: {exc}"}))


def race(data_dir: Path, actions: list[tuple[str, ...]]) -> list[dict[str, Any]]:
    """Run one process per action, all released together; their reports."""
    barrier, results = _fork.Barrier(len(actions)), _fork.Queue()
    procs = [_fork.Process(target=_child, args=(data_dir, a, barrier, results)) for a in actions]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=60)[1] for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        if proc.exitcode != 0:
            reports.append({"ok": False, "error": f"a race process exited with {proc.exitcode}"})
    return reports
