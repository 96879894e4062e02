"""``verify_log`` called directly on small logs, one per damage a database administrator can
do with the database alone: each test edits a copy of a log built once per module and reads
the report a user of ``medfed audit verify`` would read.

Fast on purpose (a copied SQLite file per test, no process, no CLI): these are the tests
``make mutate`` runs against every mutant of ``security/audit/verify.py``."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from security.audit import (
    AuditLogConfig,
    Checkpoint,
    NoteError,
    merkle,
    open_audit_log,
    parse_verifier_key,
    verify_log,
)
from security.audit.note import sign_checkpoint
from security.audit.signer import VERIFIER_KEY_FILE, load_or_create_signer
from security.audit.verify import MAX_LISTED, VerifyReport
from security.store import GatewayBase

ORIGIN = "medfed.local/audit"


def _event(n: int) -> dict:
    """A gateway read event (it has a time, so the log derives its index rows)."""
    return {
        "time": f"2026-12-01T10:{n // 60:02d}:{n % 60:02d}+00:00",
        "kind": "read",
        "principal": {"sub": f"u{n % 4}", "org": "H33010600001", "role": "clinician"},
        "purpose": "TREATMENT",
        "outcome": "ok",
        "persons": [{"personId": f"P{n % 3}", "read": [{"field": "name", "class": "identity"}]}],
    }


async def _build(folder: Path, keys: Path, count: int, every: int, on_close: bool) -> Path:
    path = folder / "gateway.db"
    # The gateway's tables from its models (test_migrations holds them equal to the
    # migrations), which is seconds faster than running the migrations per log.
    schema = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    GatewayBase.metadata.create_all(schema)
    schema.dispose()
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)
    config = AuditLogConfig(
        origin=ORIGIN,
        checkpoint_every=every,
        checkpoint_seconds=3600,  # only the count signs: the checkpoints are where we say
        checkpoint_on_close=on_close,
        sqlite_full_sync=False,
    )
    log = open_audit_log(engine, keys, config)
    log.inline_when = lambda: True  # commit on this loop: no writer process to start
    for n in range(count):
        await log.append(_event(n))
    await log.close()
    await engine.dispose()
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the whole log in the one file
    return path


PLANS = {  # events, checkpoint every, a checkpoint on close
    "tail": (45, 10, False),
    "signed": (45, 10, True),
    "dense": (25, 1, True),
    "other": (30, 10, True),
}


class Logs:
    """Pristine logs, all under one key, each built when a test first asks for it (a
    mutant's run stops at its first failing test, often before most are needed):
    ``tail``: 45 events, checkpoints at 10, 20, 30, 40, five unsigned after them;
    ``signed``: 45 events, checkpoints at 10 … 40 and 45;
    ``dense``: 25 events, a checkpoint after each;
    ``other``: another log of 30 events (its checkpoints verify, but not against these)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.keys = folder / "keys"
        self.keys.mkdir()
        self.built: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name == "key":
            self["tail"]  # the key is made with the first log
            return self.keys / VERIFIER_KEY_FILE
        if name not in self.built:
            folder = self.folder / name
            folder.mkdir()
            build = _build(folder, self.keys, *PLANS[name])
            # Asked from inside a test's event loop: built on a loop of its own.
            with ThreadPoolExecutor(1) as pool:
                self.built[name] = pool.submit(asyncio.run, build).result()
        return self.built[name]


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Logs:
    return Logs(tmp_path_factory.mktemp("logs"))


@pytest.fixture
def copy(logs, tmp_path):
    def made(name: str) -> Path:
        target = tmp_path / f"{name}.db"
        shutil.copy(logs[name], target)
        return target

    return made


def sql(path: Path, *statements: str | tuple[str, tuple]) -> None:
    with sqlite3.connect(path, isolation_level=None) as con:
        for statement in statements:
            if isinstance(statement, tuple):
                con.execute(*statement)
            else:
                con.execute(statement)


def leaves(path: Path) -> list[bytes]:
    with sqlite3.connect(path) as con:
        return [bytes(r[0]) for r in con.execute("SELECT leaf_hash FROM audit_events ORDER BY idx")]


def note_at(path: Path, size: int) -> str:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT note FROM audit_checkpoints WHERE size = ?", (size,)).fetchone()[
            0
        ]


async def check(logs, path: Path, **options) -> VerifyReport:
    key = parse_verifier_key(logs["key"].read_text())
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)
    try:
        return await verify_log(engine, options.pop("verifiers", key), origin=ORIGIN, **options)
    finally:
        await engine.dispose()


def problems(report: VerifyReport) -> list[tuple[str, int | None, str]]:
    return [(p.kind, p.index, p.detail) for p in report.problems]


def rewrite_tree(path: Path) -> None:
    """What an intruder who knows the format does after editing events and their leaf
    hashes: every stored subtree and the head recomputed to match."""
    frontier = merkle.Frontier()
    nodes: list[tuple[bytes, int, int]] = []
    for leaf in leaves(path):
        frontier.append(leaf, lambda level, idx, h: nodes.append((h, level, idx)))
    with sqlite3.connect(path, isolation_level=None) as con:
        con.executemany("UPDATE audit_nodes SET hash = ? WHERE level = ? AND idx = ?", nodes)
        con.execute(
            "UPDATE audit_head SET size = ?, root = ?, frontier = ?",
            (frontier.size, frontier.root(), b"".join(frontier.hashes())),
        )


def edit_event(path: Path, idx: int, with_hash: bool) -> None:
    with sqlite3.connect(path, isolation_level=None) as con:
        (entry,) = con.execute("SELECT entry FROM audit_events WHERE idx = ?", (idx,)).fetchone()
        edited = bytes(entry).replace(b'"outcome":"ok"', b'"outcome":"no"')
        assert edited != bytes(entry)
        con.execute("UPDATE audit_events SET entry = ? WHERE idx = ?", (edited, idx))
        if with_hash:
            con.execute(
                "UPDATE audit_events SET leaf_hash = ? WHERE idx = ?",
                (merkle.leaf_hash(edited), idx),
            )


# -- intact logs ----------------------------------------------------------------------------------


async def test_an_intact_log_verifies_with_its_root_its_checkpoints_and_its_unsigned_tail(
    logs, copy
):
    path = copy("tail")
    report = await check(logs, path)
    assert report.ok and report.problem_count == 0 and report.problems == []
    assert report.size == 45
    frontier = merkle.Frontier()
    for leaf in leaves(path):
        frontier.append(leaf)
    assert report.root == frontier.root()
    assert report.checkpoints == 4 and report.signed_size == 40 and report.unsigned == 5
    assert report.first_bad_index is None
    text = report.summary()
    assert text.startswith(
        f"audit log intact: 45 events, root {frontier.root().hex()}, 4 signed checkpoints verified"
    )
    assert "unsigned tail: 5 events after the last verified checkpoint (size 40)" in text
    assert "derived tables match the log: audit_index (45 rows)" in text
    assert report.derived is not None and report.derived.checked
    assert "your checkpoint" not in text


async def test_a_log_signed_to_its_end_has_no_unsigned_tail(logs, copy):
    report = await check(logs, copy("signed"))
    assert report.ok and report.checkpoints == 5
    assert report.signed_size == 45 and report.unsigned == 0
    assert "unsigned tail" not in report.summary()


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 8, 16, 44, 45, 46])
async def test_any_chunk_size_reads_the_same_intact_log(logs, copy, chunk):
    """The stored subtrees are read chunk by chunk: every chunk edge finds each of them."""
    path = copy("tail")
    whole = await check(logs, path)
    report = await check(logs, path, chunk=chunk)
    assert report.ok, problems(report)
    assert (report.size, report.root, report.checkpoints) == (45, whole.root, 4)
    assert report.derived is not None and report.derived.wrong_count == 0


async def test_a_list_of_keys_verifies_as_one_key_does(logs, copy):
    key = parse_verifier_key(logs["key"].read_text())
    report = await check(logs, copy("tail"), verifiers=[key])
    assert report.ok and report.checkpoints == 4


async def test_an_event_stored_as_text_is_judged_by_its_bytes(logs, copy):
    path = copy("tail")
    sql(path, "UPDATE audit_events SET entry = CAST(entry AS TEXT) WHERE idx IN (0, 7)")
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT typeof(entry) FROM audit_events WHERE idx = 7").fetchone() == (
            "text",
        )
    report = await check(logs, path)
    assert report.ok, (problems(report), report.summary())


async def test_without_the_derived_check_the_report_has_none(logs, copy):
    path = copy("tail")
    sql(path, "UPDATE audit_index SET role = 'auditor' WHERE idx = 7")
    report = await check(logs, path, derived=False)
    assert report.derived is None and report.ok
    assert "derived tables" not in report.summary()
    # Nor does a damaged log's report speak of them.
    edit_event(path, 17, with_hash=False)
    damaged = await check(logs, path, derived=False)
    assert damaged.derived is None and not damaged.ok
    assert damaged.summary().splitlines() == [
        "audit log damaged: first bad event index 17 (1 problems, 45 events read)",
        "  tampered: event 17 does not match its leaf hash (its content was changed)",
    ]


# -- events ---------------------------------------------------------------------------------------


async def test_an_edited_event_is_named_exactly(logs, copy):
    path = copy("tail")
    edit_event(path, 17, with_hash=False)
    report = await check(logs, path)
    assert not report.ok
    assert problems(report) == [
        ("tampered", 17, "event 17 does not match its leaf hash (its content was changed)")
    ]
    assert report.first_bad_index == 17
    text = report.summary()
    assert (
        text.splitlines()[0]
        == "audit log damaged: first bad event index 17 (1 problems, 45 events read)"
    )
    assert "derived tables not checked" in text
    assert report.derived is not None and not report.derived.checked


@pytest.mark.parametrize(
    ("idx", "subtree"), [(5, "4..5"), (0, "0..1"), (44, "44..44"), (40, "40..41")]
)
async def test_an_event_edited_with_its_hash_is_named_by_its_smallest_stored_subtree(
    logs, copy, idx, subtree
):
    path = copy("tail")
    edit_event(path, idx, with_hash=True)
    report = await check(logs, path)
    if idx == 44:
        # The last event of an odd-sized log is in no stored subtree: the head's root says it.
        assert problems(report) == [
            ("head", None, "the stored head root differs from the recomputed root")
        ]
        assert report.summary().splitlines()[0] == "audit log damaged (1 problems, 45 events read)"
        return
    start = int(subtree.split("..")[0])
    assert problems(report) == [
        ("tree", start, f"stored subtree of events {subtree} disagrees with the events")
    ]


async def test_a_deleted_subtree_row_is_reported_missing(logs, copy):
    path = copy("tail")
    sql(path, "DELETE FROM audit_nodes WHERE level = 2 AND idx = 3")
    report = await check(logs, path)
    assert problems(report) == [("tree", 12, "stored subtree of events 12..15 is missing")]


@pytest.mark.parametrize(("idx", "after"), [(3, 0), (25, 20), (39, 30)])
async def test_an_event_rewritten_with_its_hash_and_every_subtree_is_caught_by_a_checkpoint(
    logs, copy, idx, after
):
    path = copy("tail")
    edit_event(path, idx, with_hash=True)
    rewrite_tree(path)
    report = await check(logs, path)
    size = after + 10
    assert problems(report) == [
        (
            "tree",
            after,
            f"the signed checkpoint at size {size} does not match the events: an event after "
            f"index {after - 1} was rewritten together with its hash",
        )
    ]
    assert report.signed_size == after


async def test_an_event_in_the_unsigned_tail_rewritten_with_everything_passes_as_the_tail(
    logs, copy
):
    """What the database alone cannot show, said: the tail after the last checkpoint. The
    derived index still disagrees until it is rewritten too."""
    path = copy("tail")
    edit_event(path, 42, with_hash=True)
    rewrite_tree(path)
    half_done = await check(logs, path)
    assert half_done.problem_count == 0 and not half_done.ok
    assert half_done.derived is not None and half_done.derived.wrong_count == 1
    sql(path, "UPDATE audit_index SET outcome = 'no' WHERE idx = 42")
    report = await check(logs, path)
    assert report.ok and report.unsigned == 5


async def test_a_reported_problem_cannot_be_changed_afterwards(logs, copy):
    """The report is handed to whoever prints or forwards it: its findings are fixed."""
    path = copy("tail")
    edit_event(path, 17, with_hash=False)
    report = await check(logs, path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.problems[0].index = 40  # type: ignore[misc]
    assert report.first_bad_index == 17


async def test_a_deleted_event_is_missing_and_the_head_says_how_many(logs, copy):
    path = copy("tail")
    sql(path, "DELETE FROM audit_events WHERE idx = 7")
    report = await check(logs, path)
    assert problems(report) == [
        ("missing", 7, "events 7..7 are missing"),
        ("missing", 44, "the log recorded 45 events but only 44 are stored"),
    ]
    assert report.first_bad_index == 7
    assert report.summary().startswith(
        "audit log damaged: first bad event index 7 (2 problems, 44 events read)"
    )


async def test_several_deleted_events_are_named_as_one_range(logs, copy):
    path = copy("tail")
    sql(path, "DELETE FROM audit_events WHERE idx BETWEEN 11 AND 13")
    report = await check(logs, path)
    assert problems(report)[0] == ("missing", 11, "events 11..13 are missing")


async def test_two_swapped_events_are_named_reordered_and_inserted(logs, copy):
    path = copy("tail")
    sql(
        path,
        "UPDATE audit_events SET idx = -1 WHERE idx = 3",
        "UPDATE audit_events SET idx = 3 WHERE idx = 4",
        "UPDATE audit_events SET idx = 4 WHERE idx = -1",
    )
    report = await check(logs, path)
    assert problems(report)[:2] == [
        ("reordered", 3, "the row at index 3 holds event 4 (rows were moved, inserted or deleted)"),
        ("inserted", 3, "the row at index 4 holds event 3 (rows were moved, inserted or deleted)"),
    ]
    assert report.first_bad_index == 3


@pytest.mark.parametrize("at", [-1, -2, -1000])
async def test_a_row_put_at_a_negative_index_is_caught(logs, copy, at):
    path = copy("tail")
    sql(
        path,
        (
            "INSERT INTO audit_events (idx, leaf_hash, entry, created_at) "
            "SELECT ?, leaf_hash, entry, created_at FROM audit_events WHERE idx = 3",
            (at,),
        ),
    )
    report = await check(logs, path)
    assert not report.ok
    assert problems(report)[0] == ("missing", 0, f"event {at} is out of order")


async def test_a_row_that_is_no_log_entry_is_named(logs, copy):
    path = copy("tail")
    junk = b'{"n": 1}'
    sql(
        path,
        (
            "UPDATE audit_events SET entry = ?, leaf_hash = ? WHERE idx = 9",
            (junk, merkle.leaf_hash(junk)),
        ),
    )
    report = await check(logs, path)
    assert problems(report)[0] == ("tampered", 9, "event 9 is not a log entry")


async def test_an_entry_claiming_another_index_in_its_last_bytes_is_caught(logs, copy):
    """The index is read from the entry's tail: an entry whose tail says 8 in row 9."""
    path = copy("tail")
    with sqlite3.connect(path) as con:
        (entry,) = con.execute("SELECT entry FROM audit_events WHERE idx = 9").fetchone()
    moved = bytes(entry).replace(b',"index":9,', b',"index":8,')
    assert moved != bytes(entry)
    sql(
        path,
        (
            "UPDATE audit_events SET entry = ?, leaf_hash = ? WHERE idx = 9",
            (moved, merkle.leaf_hash(moved)),
        ),
    )
    report = await check(logs, path)
    assert problems(report)[0] == (
        "inserted",
        8,
        "the row at index 9 holds event 8 (rows were moved, inserted or deleted)",
    )


# -- the tail and the head ------------------------------------------------------------------------


async def test_events_deleted_after_the_last_checkpoint_are_caught_by_the_head(logs, copy):
    path = copy("tail")
    sql(path, "DELETE FROM audit_events WHERE idx >= 42")
    report = await check(logs, path)
    assert problems(report) == [
        ("missing", 42, "the log recorded 45 events but only 42 are stored")
    ]


async def test_events_deleted_under_a_checkpoint_are_caught_by_its_note(logs, copy):
    path = copy("tail")
    sql(path, "DELETE FROM audit_events WHERE idx >= 32")
    report = await check(logs, path)
    assert problems(report) == [
        (
            "missing",
            32,
            "a checkpoint signed 40 events but only 32 are stored: events from 32 on are missing",
        ),
        ("missing", 32, "the log recorded 45 events but only 32 are stored"),
    ]


async def test_a_tail_cut_with_its_checkpoints_and_head_is_caught_only_by_an_outside_note(
    logs, copy
):
    path = copy("tail")
    kept = note_at(path, 40)  # the operator's copy, or a witness's
    sql(
        path,
        "DELETE FROM audit_events WHERE idx >= 32",
        "DELETE FROM audit_checkpoints WHERE size > 30",
        "DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > 32",
        "DELETE FROM audit_index WHERE idx >= 32",
    )
    rewrite_tree(path)
    alone = await check(logs, path)
    assert alone.ok and alone.size == 32 and alone.signed_size == 30 and alone.unsigned == 2
    report = await check(logs, path, external_note=kept)
    assert problems(report) == [
        (
            "missing",
            32,
            "your checkpoint has 40 events but only 32 are stored: the log was truncated",
        )
    ]


async def test_an_outside_note_that_matches_vouches_for_the_tail(logs, copy):
    path = copy("signed")
    kept = note_at(path, 45)
    sql(path, "DELETE FROM audit_checkpoints WHERE size = 45")
    inside = await check(logs, path)
    assert inside.ok and inside.signed_size == 40 and inside.unsigned == 5
    report = await check(logs, path, external_note=kept)
    assert report.ok and report.external is not None and report.external.size == 45
    assert report.signed_size == 45 and report.unsigned == 0
    assert "your checkpoint of size 45 is consistent with the log" in report.summary()


async def test_an_outside_note_of_another_log_is_caught(logs, copy):
    foreign = note_at(logs["other"], 20)
    report = await check(logs, copy("tail"), external_note=foreign)
    assert problems(report) == [
        (
            "tree",
            20,
            "the external checkpoint does not match the events: an event after index 19 was "
            "rewritten together with its hash",
        )
    ]


async def test_an_outside_note_that_does_not_verify_is_the_callers_error(logs, copy):
    note = note_at(logs["tail"], 20)
    forged = note.replace("\n20\n", "\n21\n")
    assert forged != note
    with pytest.raises(NoteError):
        await check(logs, copy("tail"), external_note=forged)


async def test_a_missing_head_row_is_reported(logs, copy):
    path = copy("tail")
    sql(path, "DELETE FROM audit_head")
    report = await check(logs, path)
    assert problems(report) == [("head", None, "the log has no head row")]


async def test_events_beyond_the_head_are_reported_inserted(logs, copy):
    path = copy("tail")
    sql(path, "UPDATE audit_head SET size = 43")
    report = await check(logs, path)
    assert problems(report) == [
        ("inserted", 43, "events 43..44 were added outside the log (it recorded 43 events)")
    ]


async def test_a_head_root_alone_edited_is_caught(logs, copy):
    path = copy("tail")
    sql(path, ("UPDATE audit_head SET root = ?", (b"\x07" * 32,)))
    report = await check(logs, path)
    assert problems(report) == [
        ("head", None, "the stored head root differs from the recomputed root")
    ]


# -- checkpoint rows ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [("root", b"\x00" * 32, 40), ("size", 35, 35), ("size", 41, 41), ("size", 50, 50)],
)
async def test_an_edited_checkpoint_row_is_caught_though_its_note_is_intact(
    logs, copy, column, value, shown
):
    path = copy("tail")
    sql(path, (f"UPDATE audit_checkpoints SET {column} = ? WHERE size = 40", (value,)))
    report = await check(logs, path)
    assert problems(report) == [
        (
            "checkpoint",
            None,
            f"checkpoint at size {shown}: the stored size or root differs from the signed note",
        )
    ]
    assert report.checkpoints == 3 and report.signed_size == 30


async def test_a_checkpoint_row_with_a_broken_signature_is_caught(logs, copy):
    path = copy("tail")
    note = note_at(path, 20)
    body, _, signature = note.rpartition("\n— ")
    forged = body + "\n— " + signature[:-8] + ("A" * 8 if signature[-8:] != "A" * 8 else "B" * 8)
    sql(path, ("UPDATE audit_checkpoints SET note = ? WHERE size = 20", (forged,)))
    report = await check(logs, path)
    assert len(problems(report)) == 1
    kind, index, detail = problems(report)[0]
    assert (kind, index) == ("checkpoint", None) and detail.startswith("checkpoint at size 20: ")
    assert report.checkpoints == 3
    assert report.summary().splitlines()[0] == "audit log damaged (1 problems, 45 events read)"


async def test_a_checkpoint_row_of_a_negative_size_is_caught(logs, copy):
    path = copy("tail")
    sql(
        path,
        "INSERT INTO audit_checkpoints (size, root, note, created_at) "
        "SELECT -1, root, note, created_at FROM audit_checkpoints WHERE size = 10",
    )
    report = await check(logs, path)
    assert problems(report) == [
        (
            "checkpoint",
            None,
            "checkpoint at size -1: the stored size or root differs from the signed note",
        )
    ]


async def test_a_checkpoint_of_another_log_in_the_table_is_caught(logs, copy):
    path = copy("tail")
    sql(
        path,
        (
            "UPDATE audit_checkpoints SET note = ? WHERE size = 20",
            (note_at(logs["other"], 20),),
        ),
    )
    report = await check(logs, path)
    assert problems(report) == [
        (
            "checkpoint",
            None,
            "checkpoint at size 20: the stored size or root differs from the signed note",
        )
    ]


# -- the report's length --------------------------------------------------------------------------


async def test_more_problems_than_listed_are_counted_and_the_earliest_index_kept(logs, copy):
    """25 checkpoint rows edited (problems without an index, found first) and the last
    event deleted (index 24, found after the list is full): 26 problems, 20 listed."""
    path = copy("dense")
    sql(
        path,
        ("UPDATE audit_checkpoints SET root = ?", (b"\x01" * 32,)),
        "DELETE FROM audit_events WHERE idx = 24",
    )
    report = await check(logs, path)
    assert report.problem_count == 26 and len(report.problems) == MAX_LISTED == 20
    assert report.first_bad_index == 24
    lines = report.summary().splitlines()
    assert lines[0] == "audit log damaged: first bad event index 24 (26 problems, 24 events read)"
    assert lines[1 : 1 + MAX_LISTED - 1] == [
        f"  checkpoint: checkpoint at size {n}: the stored size or root differs from the "
        "signed note"
        for n in range(1, MAX_LISTED)
    ]
    assert lines[MAX_LISTED] == "  missing: the log recorded 25 events but only 24 are stored"
    assert lines[MAX_LISTED + 1] == "  ... and 6 more not listed"
    assert lines[-1].startswith("derived tables not checked")


async def test_a_later_problem_with_a_later_index_does_not_replace_the_last_listed(logs, copy):
    path = copy("dense")
    sql(
        path,
        ("UPDATE audit_checkpoints SET root = ? WHERE size <= 21", (b"\x01" * 32,)),
        "DELETE FROM audit_events WHERE idx = 23",
    )
    report = await check(logs, path)
    # 21 checkpoint problems (the first 20 listed), then the gap at 23 replaces the last;
    # the checkpoint at 25 and the head (index 24, later) do not replace it again.
    assert report.first_bad_index == 23
    assert problems(report)[-1] == ("missing", 23, "events 23..23 are missing")
    assert report.problem_count == 24


async def test_exactly_as_many_problems_as_listed_has_no_more_line(logs, copy):
    path = copy("dense")
    sql(path, ("UPDATE audit_checkpoints SET root = ? WHERE size <= 20", (b"\x01" * 32,)))
    report = await check(logs, path)
    assert report.problem_count == MAX_LISTED == len(report.problems)
    assert "more not listed" not in report.summary()


# -- the derived tables ---------------------------------------------------------------------------


async def test_an_edited_derived_row_is_named_and_the_log_itself_stays_intact(logs, copy):
    path = copy("tail")
    sql(path, "UPDATE audit_index SET role = 'auditor' WHERE idx = 7")
    report = await check(logs, path)
    assert report.problem_count == 0 and not report.ok
    assert report.derived is not None and report.derived.wrong_count == 1
    lines = report.summary().splitlines()
    assert lines[0].startswith("audit log intact: 45 events")
    damaged = [line for line in lines if line.startswith("derived tables damaged")]
    # Every derived table is named after "checked" (the list grows with the tables).
    (line,) = damaged
    assert line.startswith(
        "derived tables damaged: first wrong row audit_index row (idx=7, person=P1): column "
        "role differs from the log (1 wrong rows; checked audit_index (45 rows), audit_writes "
        "(0 rows), audit_alerts (0 rows)"
    )
    assert line.endswith(" rows))")
    assert lines[-1] == (
        "  derived: audit_index row (idx=7, person=P1): column role differs from the log"
    )


async def test_derived_rows_are_listed_in_leaf_order(logs, copy):
    path = copy("tail")
    sql(path, "UPDATE audit_index SET role = 'auditor' WHERE idx IN (30, 4, 17)")
    report = await check(logs, path)
    listed = [line for line in report.summary().splitlines() if line.startswith("  derived:")]
    assert [line.split("idx=")[1].split(",")[0] for line in listed] == ["4", "17", "30"]
    assert (
        report.summary()
        .splitlines()[-4]
        .startswith("derived tables damaged: first wrong row audit_index row (idx=4,")
    )


async def test_more_wrong_derived_rows_than_listed_are_counted(logs, copy):
    path = copy("tail")
    sql(path, "UPDATE audit_index SET role = 'auditor' WHERE idx < 25")
    report = await check(logs, path)
    assert report.derived is not None and report.derived.wrong_count == 25
    lines = report.summary().splitlines()
    assert len([line for line in lines if line.startswith("  derived:")]) == MAX_LISTED
    assert lines[-1] == "  ... and 5 more not listed"


async def test_exactly_as_many_wrong_derived_rows_as_listed_has_no_more_line(logs, copy):
    path = copy("tail")
    sql(path, "UPDATE audit_index SET role = 'auditor' WHERE idx < 20")
    report = await check(logs, path)
    assert report.derived is not None and report.derived.wrong_count == MAX_LISTED
    assert "more not listed" not in report.summary()


async def test_once_the_list_is_full_a_tie_keeps_the_first_problem_of_that_index(logs, copy):
    """20 checkpoint problems fill the list; events from 22 on deleted: three checkpoints
    past the end and the head each say so, all at index 22; the first of them is kept."""
    path = copy("dense")
    sql(
        path,
        ("UPDATE audit_checkpoints SET root = ? WHERE size <= 20", (b"\x01" * 32,)),
        "DELETE FROM audit_events WHERE idx >= 22",
    )
    report = await check(logs, path)
    assert report.problem_count == 24 and report.first_bad_index == 22
    assert problems(report)[-1] == (
        "missing",
        22,
        "a checkpoint signed 23 events but only 22 are stored: events from 22 on are missing",
    )


def _signed(logs, size: int, root: bytes) -> str:
    """A checkpoint signed with the log's own key but saying what the key holder chose."""
    signer = load_or_create_signer(logs["key"].parent, ORIGIN)
    return sign_checkpoint(Checkpoint(ORIGIN, size, root), signer)


async def test_a_signed_checkpoint_of_the_empty_log_must_have_the_empty_root(logs, copy):
    path = copy("tail")
    good, bad = _signed(logs, 0, merkle.EMPTY_ROOT), _signed(logs, 0, b"\x05" * 32)
    report = await check(logs, path, external_note=good)
    assert report.ok and report.checkpoints == 4
    wrong = await check(logs, path, external_note=bad)
    assert problems(wrong) == [
        (
            "tree",
            0,
            "the external checkpoint does not match the events: an event after index -1 was "
            "rewritten together with its hash",
        )
    ]
    sql(
        path,
        (
            "INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES (0, ?, ?, ?)",
            (b"\x05" * 32, bad, "2026-12-01 10:00:00"),
        ),
    )
    stored = await check(logs, path)
    assert problems(stored) == [
        (
            "tree",
            0,
            "the signed checkpoint at size 0 does not match the events: an event after index "
            "-1 was rewritten together with its hash",
        )
    ]
    assert stored.checkpoints == 5
