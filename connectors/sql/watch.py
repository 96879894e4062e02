"""Is the SQLite file of a source still the file we opened, whole?

An open SQLite connection keeps reading the file it opened even after that file is renamed,
deleted or replaced: without a check, the old rows would keep being served (and writes
would land in a file nobody will read again). So each use of a SQLite source compares the
file now at its path with the one adopted when it was opened:

* its identity (device and inode): another file there is ``FILE_REPLACED``, none is
  ``FILE_MISSING``;
* when its size or modification time changed since the last look, its 100-byte header:
  not SQLite's magic (or an impossible page size) is ``FILE_CORRUPT``; empty, or shorter
  than the page count the header vouches for, is ``FILE_TRUNCATED``.

A ``stat`` per use, and a 100-byte read only after the file changed: a few microseconds.
Damage inside the file shows up as SQLite's own errors (``malformed``), which the health
guard maps to ``FILE_CORRUPT`` too. A file is adopted again only by a successful probe.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from connectors.health import Reason, SourceDown

HEADER = 100
MAGIC = b"SQLite format 3\x00"


class FileWatch:
    def __init__(self, source: str, path: Path) -> None:
        self.source = source
        self.path = path
        self.identity: tuple[int, int] | None = None  # (st_dev, st_ino) adopted
        self._stamp: tuple[int, int] | None = None  # (size, mtime_ns) last header-checked

    def _down(self, reason: str, detail: str = "") -> SourceDown:
        return SourceDown(self.source, reason, detail)

    def _stat(self) -> os.stat_result:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            raise self._down(Reason.FILE_MISSING) from None
        except OSError:
            raise self._down(Reason.IO_ERROR) from None

    def _header(self, size: int) -> None:
        if size < HEADER:
            raise self._down(Reason.FILE_TRUNCATED, f"{size} bytes")
        try:
            with open(self.path, "rb") as handle:
                head = handle.read(HEADER)
        except OSError:
            raise self._down(Reason.IO_ERROR) from None
        if len(head) < HEADER:
            raise self._down(Reason.FILE_TRUNCATED)
        if head[:16] != MAGIC:
            raise self._down(Reason.FILE_CORRUPT, "not a SQLite header")
        page_size = int.from_bytes(head[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        if page_size < 512 or page_size & (page_size - 1):
            raise self._down(Reason.FILE_CORRUPT, "impossible page size")
        # The page count is valid only when its "version valid for" matches the change
        # counter (SQLite file format, 1.3.7 and 1.3.13); older writers leave it stale.
        pages = int.from_bytes(head[28:32], "big")
        if head[24:28] == head[92:96] and pages * page_size > size:
            raise self._down(Reason.FILE_TRUNCATED, f"{size} of {pages * page_size} bytes")

    def check(self) -> None:
        """Raise :class:`SourceDown` unless the adopted file is at the path and looks whole;
        the first check adopts the file it finds."""
        st = self._stat()
        identity = (st.st_dev, st.st_ino)
        if self.identity is None:
            self.identity = identity
        elif identity != self.identity:
            raise self._down(Reason.FILE_REPLACED)
        stamp = (st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            self._header(st.st_size)
            self._stamp = stamp

    def probe(self) -> None:
        """Whether the file at the path (whichever it is now) is a whole, migrated source;
        adopt it if so. Blocking: run it on a thread."""
        st = self._stat()
        self._header(st.st_size)
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            (ok,) = conn.execute("PRAGMA quick_check(1)").fetchone()
            if ok != "ok":
                raise self._down(Reason.FILE_CORRUPT, "quick_check failed")
            if conn.execute("SELECT version_num FROM alembic_version").fetchone() is None:
                raise self._down(Reason.SCHEMA_MISSING, "never migrated")
        finally:
            conn.close()
        after = self._stat()
        if (after.st_dev, after.st_ino) != (st.st_dev, st.st_ino):
            raise self._down(Reason.FILE_REPLACED, "replaced during the probe")
        self.identity = (st.st_dev, st.st_ino)
        self._stamp = None  # the next check reads the header of what is there then
