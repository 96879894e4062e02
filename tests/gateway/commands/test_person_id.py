"""``medfed person-id``: the personId of an ID number, the same the sources store, computed
from the keyring alone: one line per number, nothing echoed, no source asked."""

from __future__ import annotations

import io

import pytest

from gateway.cli import main
from tests.support.federation import Federation, make_id_number

INSURED = make_id_number("330106", seq=11)
NOBODY = make_id_number("330106", seq=12)


@pytest.fixture
async def fed(data_dir):
    fed = await Federation(data_dir).setup()
    fed.ref = await fed.add_person(INSURED, "张三")
    return fed


def _run(fed, capsys, *args: str, stdin: str | None = None, monkeypatch=None) -> tuple:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--data-dir", str(fed.data_dir), "person-id", *args])
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_personid_is_the_one_the_bureau_stores(fed, capsys):
    code, out, err = _run(fed, capsys, "--id-number", INSURED)
    assert (code, err) == (0, "") and out == fed.ref + "\n"


async def test_an_uninsured_number_gets_a_personid_all_the_same(fed, capsys, monkeypatch):
    # No source is asked: the answer is the same shape for a number insured nowhere, so the
    # command is no oracle of who is insured.
    code, out, _ = _run(
        fed, capsys, "--stdin", stdin=f"{INSURED}\n\n{NOBODY.lower()}\n", monkeypatch=monkeypatch
    )
    assert code == 0
    assert out.splitlines() == [fed.ref, fed.indexer.person_ref(NOBODY)]


async def test_a_bad_number_is_named_by_its_place_never_by_its_value(fed, capsys, monkeypatch):
    bad = INSURED[:17] + ("0" if INSURED[17] != "0" else "1")
    code, out, err = _run(
        fed, capsys, "--stdin", stdin=f"{INSURED}\n{bad}\n", monkeypatch=monkeypatch
    )
    assert code == 2 and out == ""
    assert "line 2 of stdin: the check digit is wrong" in err and bad not in err
