"""Owner-only key files that survive races between processes and a power loss.

Three rules, because a lost key loses every value under it:

* a file that must exist once (a KEK file, a signing key) is created with ``link()``, which
  refuses to overwrite: the first process wins and every other one re-reads the winner's;
* a file that changes is written to a temporary file with a name no other process or thread
  uses, fsynced, renamed over the old one, and then the directory is fsynced, so after a
  crash the directory names either the old file or the new one, never a lost rename;
* a read-modify-write of a shared file happens under an exclusive ``flock`` (:func:`locked`).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_name(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process or thread picks."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable (a no-op where directories cannot be
    opened, which POSIX file systems all allow)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # exactly this mode, whatever the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def create_private_once(path: Path, make: Callable[[], bytes]) -> bool:
    """Write ``make()`` to ``path`` (mode 0600) unless the file exists already; True if this
    call created it.

    The bytes go to a temporary file first, then ``link()`` puts it in place: link refuses
    to overwrite, so a key another process made first wins, and the caller must read the file
    back rather than use what it made.
    """
    if path.exists():
        return False
    tmp = _write_temp(path, make(), 0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    fsync_dir(path.parent)
    return True


def replace_file(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see the module docstring)."""
    tmp = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextmanager
def locked(lock: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock`` (created owner-only if missing)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def exposure(path: Path) -> str | None:
    """Why ``path`` is unsafe to hold a private key (group or others may use it), or None."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
    return None
