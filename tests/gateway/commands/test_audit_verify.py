"""``medfed audit verify`` against the damage a database administrator can do with the
database alone: events deleted after the last checkpoint, a checkpoint row whose ``size`` or
``root`` column is edited while its signed note stays, and more problems than the report lists.

What the database alone cannot prove is said, not hidden: events after the last checkpoint are
signed by nothing, so verify names that unsigned tail; a tail cut together with the head row is
caught only by a checkpoint kept elsewhere (``medfed audit checkpoint``, docs/audit.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.cli import main
from security.audit import merkle
from security.audit.verify import MAX_LISTED
from tests.support.audit import append_events

# The command reads the embedded defaults, whatever the environment says.
pytestmark = pytest.mark.usefixtures("embedded_cli")


def verify(data_dir: Path, capsys, *args: str) -> tuple[int, str]:
    code = main(["--data-dir", str(data_dir), "audit", "verify", *args])
    out, err = capsys.readouterr()
    return code, out + err


def db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "gateway.db", isolation_level=None)


def rewrite_head(con: sqlite3.Connection) -> None:
    """What a careful intruder does after deleting rows: make the head row agree with them."""
    leaves = [bytes(r[0]) for r in con.execute("SELECT leaf_hash FROM audit_events ORDER BY idx")]
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    con.execute(
        "UPDATE audit_head SET size = ?, root = ?, frontier = ?",
        (len(leaves), frontier.root(), b"".join(frontier.hashes())),
    )


@pytest.fixture
def tail(data_dir: Path) -> Path:
    """45 events, checkpoints at 10, 20, 30 and 40, and five unsigned events after them (a
    gateway stopped between two checkpoints)."""
    append_events(data_dir, 45, checkpoint_on_close=False)
    return data_dir


def test_an_intact_log_with_an_unsigned_tail_verifies_and_names_the_tail(tail, capsys):
    code, out = verify(tail, capsys)
    assert code == 0, out
    assert "intact: 45 events" in out and "4 signed checkpoints verified" in out
    assert "unsigned tail: 5 events after the last verified checkpoint (size 40)" in out


def test_a_fully_signed_log_has_no_unsigned_tail(data_dir, capsys):
    append_events(data_dir, 45)  # closed normally: a final checkpoint at 45
    code, out = verify(data_dir, capsys)
    assert code == 0 and "5 signed checkpoints verified" in out
    assert "unsigned tail" not in out


def test_events_deleted_after_the_last_checkpoint_are_caught_by_the_head_row(tail, capsys):
    with db(tail) as con:
        con.execute("DELETE FROM audit_events WHERE idx >= 42")
    code, out = verify(tail, capsys)
    assert code == 1
    assert "first bad event index 42 " in out
    assert "the log recorded 45 events but only 42 are stored" in out


def test_a_cut_tail_with_a_rewritten_head_is_reported_as_the_unsigned_tail_it_now_is(tail, capsys):
    """The database alone cannot tell 42 events from 45 whose last three were deleted along
    with the head: verify passes, and says that the events after size 40 are unsigned."""
    with db(tail) as con:
        con.execute("DELETE FROM audit_events WHERE idx >= 42")
        con.execute("DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > 42")
        rewrite_head(con)
    code, out = verify(tail, capsys)
    assert code == 0, out
    assert "intact: 42 events" in out
    assert "unsigned tail: 2 events after the last verified checkpoint (size 40)" in out


def test_a_head_rewritten_in_size_only_is_caught(tail, capsys):
    with db(tail) as con:
        con.execute("DELETE FROM audit_events WHERE idx >= 42")
        con.execute("UPDATE audit_head SET size = 42")
    code, out = verify(tail, capsys)
    assert code == 1 and "the stored head root differs from the recomputed root" in out


@pytest.mark.parametrize(
    "column,value",
    [("root", b"\x00" * 32), ("size", 35), ("size", 41), ("size", 50)],
    ids=["root", "size smaller", "size larger", "size past the end"],
)
def test_an_edited_checkpoint_row_is_caught_though_its_signed_note_is_intact(
    data_dir, capsys, column, value
):
    append_events(data_dir, 45)
    with db(data_dir) as con:
        con.execute(f"UPDATE audit_checkpoints SET {column} = ? WHERE size = 40", (value,))
    code, out = verify(data_dir, capsys)
    assert code == 1
    shown = 40 if column == "root" else value
    assert f"checkpoint at size {shown}: the stored size or root differs from the signed note" in (
        out
    )
    # The edit is one problem, not a claim that events are missing.
    assert "missing" not in out and "(1 problems, 45 events read)" in out


def test_an_edited_root_and_note_from_another_checkpoint_is_caught(data_dir, capsys):
    """Replacing the row wholesale by another real checkpoint's root and note: the note
    verifies, but says another size."""
    append_events(data_dir, 45)
    with db(data_dir) as con:
        root, note = con.execute(
            "SELECT root, note FROM audit_checkpoints WHERE size = 30"
        ).fetchone()
        con.execute("UPDATE audit_checkpoints SET root = ?, note = ? WHERE size = 40", (root, note))
    code, out = verify(data_dir, capsys)
    assert code == 1 and "checkpoint at size 40: the stored size or root differs" in out


def test_more_problems_than_the_report_lists_are_counted_and_the_first_index_is_kept(
    data_dir, capsys
):
    """30 edited events make 30 problems: 20 are listed, the other 10 counted; the first bad
    index stays the earliest even when it is found after the list is full."""
    append_events(data_dir, 40, checkpoint_every=1)  # a checkpoint per event
    with db(data_dir) as con:
        # Every checkpoint row's root column: problems without an event index, found first.
        con.execute("UPDATE audit_checkpoints SET root = ?", (b"\x01" * 32,))
        # And one event deleted at the end: found last, with index 39.
        con.execute("DELETE FROM audit_events WHERE idx = 39")
    code, out = verify(data_dir, capsys)
    assert code == 1
    # The report itself; "medfed: ..." lines on stderr say which outside checkpoint was used.
    lines = [line for line in out.splitlines() if not line.startswith("medfed: ")]
    problems = 40 + 1  # 40 checkpoint rows + the missing event (39 as the head says)
    assert lines[0] == (
        f"audit log damaged: first bad event index 39 ({problems} problems, 39 events read)"
    )
    # The lead, twenty problems, the "more" line, and the derived tables left unchecked.
    assert len(lines) == 1 + MAX_LISTED + 1 + 1
    assert lines[-2] == f"  ... and {problems - MAX_LISTED} more not listed"
    assert lines[-1].startswith("derived tables not checked")
    assert any("the log recorded 40 events but only 39 are stored" in line for line in lines)


def test_exactly_as_many_problems_as_listed_has_no_more_line(data_dir, capsys):
    append_events(data_dir, MAX_LISTED, checkpoint_every=1)
    with db(data_dir) as con:
        con.execute("UPDATE audit_checkpoints SET root = ?", (b"\x01" * 32,))
    code, out = verify(data_dir, capsys)
    assert code == 1 and f"({MAX_LISTED} problems, {MAX_LISTED} events read)" in out
    assert "more not listed" not in out
    assert len([line for line in out.splitlines() if line.startswith("  checkpoint:")]) == (
        MAX_LISTED
    )
