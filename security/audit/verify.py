"""Check a stored audit log from first principles, with nothing but its public key.

Streams events in index order in fixed-size chunks (memory stays bounded at any size),
recomputes every leaf hash from the stored bytes and the whole tree from those leaves, and
compares: each stored leaf hash, the index hashed into each entry, the contiguity of the
indexes, every stored subtree, the head row, and the root and signature of every checkpoint.
The stored hashes and subtrees are never trusted, only compared.

The same verifier checks the records log (``security.records``), which shares the tree,
proofs and checkpoints: a :class:`LogTables` names a log's four tables, how the index is read
from a leaf entry and the head's root; the default is the audit log's.

The report names the first event that can no longer be trusted. An edited, deleted, moved or
inserted row is named exactly; an edit that also rewrote the row's hash is named to within
the smallest stored subtree or signed checkpoint that disagrees.

Then what the auditors read: every derived table is recomputed from the verified leaves as
the stream passes them and compared row by row (:mod:`security.audit.derived_check`); the
first wrong row is named by table, key and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from security.audit import merkle
from security.audit.derived_check import DerivedChecker, DerivedReport
from security.audit.log import CHECKPOINTS, EVENTS, HEAD, NODES
from security.audit.models import HEAD_ID
from security.audit.note import Checkpoint, NoteError, open_checkpoint
from security.audit.signer import Verifier

CHUNK = 20_000
MAX_LISTED = 20  # problems kept in the report; the rest are only counted


@dataclass(frozen=True)
class Problem:
    kind: str  # tampered | missing | reordered | inserted | tree | checkpoint | head
    index: int | None  # the first event index this makes untrustworthy, if known
    detail: str


@dataclass
class VerifyReport:
    size: int = 0  # events read
    root: bytes = merkle.EMPTY_ROOT  # recomputed from the events
    checkpoints: int = 0  # checkpoints whose signature and root were checked
    external: Checkpoint | None = None
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    derived: DerivedReport | None = None  # the derived tables' check (None: not asked for)
    # The size of the last checkpoint (stored or external) the events matched: the events
    # after it are vouched for by no signature, so their deletion shows only against the head
    # row, which whoever can delete rows can rewrite too.
    signed_size: int = 0

    @property
    def unsigned(self) -> int:
        """Events after the last checkpoint the events matched (a size the stream reached)."""
        return self.size - self.signed_size

    @property
    def ok(self) -> bool:
        """The log is intact and so is every derived table checked."""
        return self.problem_count == 0 and (self.derived is None or self.derived.wrong_count == 0)

    @property
    def first_bad_index(self) -> int | None:
        indexes = [p.index for p in self.problems if p.index is not None]
        return min(indexes) if indexes else None

    def add(self, kind: str, index: int | None, detail: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(Problem(kind, index, detail))
        elif index is not None and (self.first_bad_index is None or index < self.first_bad_index):
            # Keep the earliest index even when the list is full.
            self.problems[-1] = Problem(kind, index, detail)

    def summary(self) -> str:
        if self.problem_count == 0:
            text = (
                f"audit log intact: {self.size} events, root "
                f"{self.root.hex()}, {self.checkpoints} signed checkpoints verified"
            )
            if self.external is not None:
                text += f"; your checkpoint of size {self.external.size} is consistent with the log"
            if self.unsigned:
                text += (
                    f"\n  unsigned tail: {self.unsigned} events after the last verified checkpoint "
                    f"(size {self.signed_size}) are covered by no signature; events deleted there "
                    "show only against a checkpoint kept outside this database"
                )
            return text + self._derived_summary()
        first = self.first_bad_index
        lead = (
            f"audit log damaged: first bad event index {first}"
            if first is not None
            else "audit log damaged"
        )
        lines = [f"{lead} ({self.problem_count} problems, {self.size} events read)"]
        lines += [f"  {p.kind}: {p.detail}" for p in self.problems]
        if self.problem_count > len(self.problems):
            lines.append(f"  ... and {self.problem_count - len(self.problems)} more not listed")
        if self.derived is not None and not self.derived.checked:
            lines.append(
                "derived tables not checked: they are recomputed only from a log that verifies"
            )
        return "\n".join(lines)

    def _derived_summary(self) -> str:
        derived = self.derived
        if derived is None:
            return ""
        if derived.wrong_count == 0:
            return f"\nderived tables match the log: {derived.describe_tables()}"
        first = derived.first()
        assert first is not None
        lines = [
            "",
            f"derived tables damaged: first wrong row {first.describe()} "
            f"({derived.wrong_count} wrong rows; checked {derived.describe_tables()})",
        ]
        lines += [
            f"  derived: {w.describe()}" for w in sorted(derived.wrong, key=lambda w: w.index)
        ]
        if derived.wrong_count > len(derived.wrong):
            lines.append(f"  ... and {derived.wrong_count - len(derived.wrong)} more not listed")
        return "\n".join(lines)


@dataclass(frozen=True)
class LogTables:
    """One Merkle log's tables as the verifier reads them: leaves (``idx``, ``leaf_hash``,
    ``entry``), stored subtrees (``level``, ``idx``, ``hash``), checkpoints (``size``,
    ``root``, ``note``) and the head row (``id``, ``size``); ``claimed_index`` reads the
    index an entry was hashed with (None: not an entry of this log), ``head_root`` the root
    the head row records."""

    leaves: Table
    nodes: Table
    checkpoints: Table
    head: Table
    claimed_index: Callable[[bytes], int | None]
    head_root: Callable[[Any], bytes]
    derived: bool  # whether derived tables are recomputed from its leaves (the audit log's)


def _nodes_filter(start: int, end: int, nodes_table: Table = NODES):
    """Stored subtrees completed by leaves at positions [start, end): none is of a level
    above ``end.bit_length() - 1``."""
    clauses = []
    for level in range(1, end.bit_length()):
        lo = ((start + (1 << level)) >> level) - 1
        hi = (end >> level) - 1
        if lo <= hi:
            clauses.append(and_(nodes_table.c.level == level, nodes_table.c.idx.between(lo, hi)))
    return or_(*clauses) if clauses else None


class _Checker:
    def __init__(
        self,
        verifiers: list[Verifier],
        origin: str | None,
        external: Checkpoint | None,
        claimed_index: Callable[[bytes], int | None],
    ) -> None:
        self.claimed_index = claimed_index
        self.verifiers = verifiers
        self.origin = origin
        self.external = external
        self.report = VerifyReport(external=external)
        self.frontier = merkle.Frontier()
        self.expected = 0  # the index the next row should have
        self.stored_nodes: dict[tuple[int, int], bytes] = {}
        self.last_good_checkpoint = 0

    @property
    def tree_trusted(self) -> bool:
        # After the first problem every later subtree and root differs as a consequence;
        # reporting those would bury the cause.
        return self.report.problem_count == 0

    def _on_node(self, level: int, idx: int, h: bytes) -> None:
        stored = self.stored_nodes.pop((level, idx), None)
        if self.tree_trusted and stored != h:
            start = idx << level
            what = "is missing" if stored is None else "disagrees with the events"
            self.report.add(
                "tree",
                start,
                f"stored subtree of events {start}..{start + (1 << level) - 1} {what}",
            )

    def row(self, idx: int, leaf: bytes, entry: bytes | str) -> None:
        report = self.report
        if not isinstance(entry, bytes):
            # A hand edit can turn the BLOB into text; judge it by its bytes all the same.
            entry = str(entry).encode("utf-8")
        if idx != self.expected:
            report.add(
                "missing",
                self.expected,
                f"events {self.expected}..{idx - 1} are missing"
                if idx > self.expected
                else f"event {idx} is out of order",
            )
            self.expected = idx
        computed = merkle.leaf_hash(entry)
        if computed != leaf:
            report.add(
                "tampered",
                idx,
                f"event {idx} does not match its leaf hash (its content was changed)",
            )
        claimed = self.claimed_index(entry)
        if claimed is None:
            report.add("tampered", idx, f"event {idx} is not a log entry")
        elif claimed != idx:
            kind = "inserted" if claimed < idx else "reordered"
            report.add(
                kind,
                min(idx, claimed),
                f"the row at index {idx} holds event "
                f"{claimed} (rows were moved, inserted or deleted)",
            )
        self.frontier.append(computed, self._on_node)
        self.expected += 1

    def checkpoint(self, size: int, root: bytes, note: str) -> Checkpoint | None:
        """Check one stored checkpoint row; the signed note it holds, if that verifies."""
        report = self.report
        try:
            signed = open_checkpoint(note, self.verifiers, self.origin)
        except NoteError as exc:
            report.add("checkpoint", None, f"checkpoint at size {size}: {exc}")
            return None
        if signed.size != size or signed.root != root:
            report.add(
                "checkpoint",
                None,
                f"checkpoint at size {size}: the stored size or root differs from the signed note",
            )
            return None
        report.checkpoints += 1
        self.compare_root(signed, f"signed checkpoint at size {size}")
        return signed

    def compare_root(self, checkpoint: Checkpoint, what: str) -> None:
        if self.frontier.size != checkpoint.size:
            return  # compared when the stream reaches it, or reported as missing at the end
        if self.frontier.root() == checkpoint.root:
            self.last_good_checkpoint = checkpoint.size
        elif self.tree_trusted:
            self.report.add(
                "tree",
                self.last_good_checkpoint,
                f"the {what} does not match the events: an event after index "
                f"{self.last_good_checkpoint - 1} was rewritten together with "
                "its hash",
            )


# The envelope is canonical JSON whose last members are the index and the time, so the
# index can be read from the tail without parsing the event (a third of verify's time).
_TAIL = re.compile(rb',"index":(0|[1-9][0-9]{0,18}),"logged_at":"[0-9:.TZ-]{1,40}"}\Z')


def _claimed_index(entry: bytes) -> int | None:
    if not entry.startswith(b'{"event":{'):
        return None
    match = _TAIL.search(entry, len(entry) - 96)  # a negative position counts as 0
    return int(match.group(1)) if match else None


AUDIT_TABLES = LogTables(
    EVENTS, NODES, CHECKPOINTS, HEAD, _claimed_index, lambda head: head.root, derived=True
)


async def _checkpoints_in(
    conn: AsyncConnection, low: int | None, high: int | None, table: Table = CHECKPOINTS
):
    query = select(table.c.size, table.c.root, table.c.note).order_by(table.c.size)
    if low is not None:
        query = query.where(table.c.size >= low)
    if high is not None:
        query = query.where(table.c.size <= high)
    return (await conn.execute(query)).all()


async def verify_log(
    engine: AsyncEngine,
    verifiers: Verifier | Iterable[Verifier],
    *,
    origin: str | None = None,
    external_note: str | None = None,
    chunk: int = CHUNK,
    derived: bool = True,
    log: LogTables = AUDIT_TABLES,
) -> VerifyReport:
    """Verify the whole stored log; ``external_note`` is a checkpoint kept outside the
    gateway, which must match the events too. Raises ``NoteError`` if that note itself does
    not verify (a problem with the caller's input, not the log). With ``derived`` the
    derived tables are recomputed from the leaves and compared too (the audit log's only).
    ``log`` names the log's tables: the audit log's unless told otherwise."""
    trusted = [verifiers] if isinstance(verifiers, Verifier) else list(verifiers)
    external = (
        open_checkpoint(external_note, trusted, origin) if external_note is not None else None
    )
    checker = _Checker(trusted, origin, external, log.claimed_index)
    report = checker.report
    tables = DerivedChecker(max_listed=MAX_LISTED) if derived and log.derived else None
    leaves_t, nodes_t, checkpoints_t = log.leaves, log.nodes, log.checkpoints
    async with engine.connect() as conn:
        head = (await conn.execute(select(log.head).where(log.head.c.id == HEAD_ID))).one_or_none()
        # Those of the empty log, and any row of a negative size (reported, not skipped).
        for size, root, note in await _checkpoints_in(conn, None, 0, checkpoints_t):
            checker.checkpoint(size, root, note)
        if external is not None and external.size == 0:
            checker.compare_root(external, "external checkpoint")
        # No lower bound on the first chunk: a row put at a negative index is read (and
        # reported out of order) rather than skipped.
        last_idx: int | None = None
        while True:
            query = select(leaves_t.c.idx, leaves_t.c.leaf_hash, leaves_t.c.entry)
            if last_idx is not None:
                query = query.where(leaves_t.c.idx > last_idx)
            rows = (await conn.execute(query.order_by(leaves_t.c.idx).limit(chunk))).all()
            if not rows:
                break
            start = checker.frontier.size
            end = start + len(rows)
            nodes = _nodes_filter(start, end, nodes_t)
            if nodes is not None:
                checker.stored_nodes = {
                    (r.level, r.idx): r.hash
                    for r in await conn.execute(
                        select(nodes_t.c.level, nodes_t.c.idx, nodes_t.c.hash).where(nodes)
                    )
                }
            pending = list(await _checkpoints_in(conn, start + 1, end, checkpoints_t))
            for idx, leaf, entry in rows:
                checker.row(idx, leaf, entry)
                while pending and pending[0].size == checker.frontier.size:
                    checker.checkpoint(*pending.pop(0))
                if external is not None and external.size == checker.frontier.size:
                    checker.compare_root(external, "external checkpoint")
            # Every size in (start, end] is reached once (the stream counts rows, not
            # indexes), so no checkpoint of the chunk is left in ``pending``.
            if tables is not None and checker.tree_trusted:
                # Only leaves the log vouches for are a basis for the derived rows.
                await tables.chunk(conn, [(r.idx, _bytes(r.entry)) for r in rows])
            last_idx = rows[-1].idx
        if tables is not None and checker.tree_trusted:
            await tables.finish(conn)
        report.size = checker.frontier.size
        report.root = checker.frontier.root()
        for size, root, note in await _checkpoints_in(conn, report.size + 1, None, checkpoints_t):
            # Only a note that verifies proves events are missing; an edited size column
            # is reported as the checkpoint problem it is.
            if checker.checkpoint(size, root, note) is not None:
                report.add(
                    "missing",
                    report.size,
                    f"a checkpoint signed {size} events but only "
                    f"{report.size} are stored: events from {report.size} on are missing",
                )
    if external is not None and external.size > report.size:
        report.add(
            "missing",
            report.size,
            f"your checkpoint has {external.size} events but "
            f"only {report.size} are stored: the log was truncated",
        )
    _check_head(report, head, log.head_root)
    report.signed_size = checker.last_good_checkpoint
    if tables is not None:
        report.derived = tables.report
        tables.report.checked = report.problem_count == 0
    return report


def _bytes(entry: bytes | str) -> bytes:
    return entry if isinstance(entry, bytes) else str(entry).encode("utf-8")


def _check_head(
    report: VerifyReport, head, head_root: Callable[[Any], bytes] = lambda head: head.root
) -> None:
    if head is None:
        report.add("head", None, "the log has no head row")
    elif head.size > report.size:
        report.add(
            "missing",
            report.size,
            f"the log recorded {head.size} events but only {report.size} are stored",
        )
    elif head.size < report.size:
        report.add(
            "inserted",
            head.size,
            f"events {head.size}..{report.size - 1} were "
            f"added outside the log (it recorded {head.size} events)",
        )
    elif head_root(head) != report.root and report.ok:
        report.add("head", None, "the stored head root differs from the recomputed root")
