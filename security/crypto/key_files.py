"""Owner-only private key files, created once even when several processes race to do it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path


def create_private_once(path: Path, make: Callable[[], bytes]) -> None:
    """Write ``make()`` to ``path`` (mode 0600) unless the file exists already.

    The bytes go to a temporary file first, then ``link()`` puts it in place: link refuses
    to overwrite, so a key another process made first wins and every process uses one key.
    """
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(make())
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def exposure(path: Path) -> str | None:
    """Why ``path`` is unsafe to hold a private key (group or others may use it), or None."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
    return None
