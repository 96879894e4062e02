"""One normalisation for every identifier: the same person whatever digits or separators."""

from __future__ import annotations

import pytest

from connectors.domain import codes
from security.crypto import BlindIndexer, KeyRing
from security.identifiers import IdentifierError, normalise_id_number, normalise_phone

ID = "33010219900101123" + codes.id_check_digit("33010219900101123")


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


FULL_WIDTH_ID = full_width(ID)


@pytest.fixture
def indexer(data_dir) -> BlindIndexer:
    return BlindIndexer(KeyRing.open(data_dir, create=True))


def test_full_width_and_spaced_id_numbers_are_one_person(indexer):
    assert codes.validate_id_number(ID) is None  # positive control: a valid ASCII number
    for written in (
        FULL_WIDTH_ID,
        f" {ID[:6]} {ID[6:]}",
        ID.lower(),
        full_width(ID[:6]) + ID[6:].lower(),
    ):
        assert normalise_id_number(written) == ID
        assert codes.validate_id_number(written) is None
        assert indexer.id_number(written) == indexer.id_number(ID)
        assert indexer.person_ref(written) == indexer.person_ref(ID)


@pytest.mark.parametrize("digits", [0x660, 0x966, 0xFF10 - 0xFF10 + 0x1D7CE])  # ٠ ० 𝟎
def test_other_scripts_digits_are_not_id_numbers(digits):
    # Python's \\d and int() accept them; the canonical form must not.
    written = "".join(chr(digits + int(d)) for d in ID[:17]) + ID[17]
    problem = codes.validate_id_number(written)
    if normalise_id_number(written) == ID:  # NFKC folds mathematical digits to ASCII
        assert problem is None
    else:
        assert problem == "not an 18-character citizen ID number"


@pytest.mark.parametrize(
    "written",
    [
        "13800000000",
        "+86 138 0000 0000",
        "+86-138-0000-0000",
        "008613800000000",
        "8613800000000",
        "１３８００００００００",
        "＋８６　１３８　００００　００００",
        "(+86) 138.0000.0000",
    ],
)
def test_every_way_of_writing_a_phone_is_one_e164_number(indexer, written):
    assert normalise_phone(written) == "+8613800000000"
    assert indexer.phone(written) == indexer.phone("13800000000")


def test_fixed_lines_drop_the_trunk_zero_and_foreign_numbers_keep_theirs():
    assert normalise_phone("0571-8888 1234") == "+8657188881234"
    assert normalise_phone("+86 (0)571 8888 1234") == "+8657188881234"
    assert normalise_phone("+1 650 555 0100") == "+16505550100"


@pytest.mark.parametrize("written", ["12345", "138000000000000000", "call-me", "+0123456789", ""])
def test_what_is_not_a_phone_is_refused_without_repeating_it(written):
    with pytest.raises(IdentifierError) as caught:
        normalise_phone(written)
    assert written not in str(caught.value) or not written
