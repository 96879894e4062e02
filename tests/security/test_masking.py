"""Every mask pinned on short, boundary and long values: what a MASK decision shows."""

from __future__ import annotations

from datetime import date

import pytest

from security.masking import mask_birth_date, mask_id_number, mask_name, mask_phone, mask_text

ID_NUMBERS = [
    ("", ""),
    ("1", "*"),
    ("1234567", "*******"),
    ("12345678", "********"),  # was 123*5678: seven of eight shown
    ("123456789", "********9"),
    ("123456789012", "********9012"),
    ("1234567890123", "1********0123"),
    ("330106800517123", "330********7123"),  # the old 15-digit number: birth date hidden
    ("330106199001011234", "330***********1234"),
    ("33010619900101123X", "330***********123X"),
    ("330106199001011234567", "330**************4567"),
]

PHONES = [
    ("", ""),
    ("1", "*"),
    ("1234", "****"),
    ("12345", "****5"),
    ("1234567", "****567"),  # was returned unmasked
    ("87654321", "****4321"),  # was 876*4321: seven of eight shown
    ("0571876543", "05****6543"),  # ten digits: the head gives way first
    ("13812345678", "138****5678"),
    ("8613812345678", "861******5678"),
]

NAMES = [
    ("", ""),
    ("张", "*"),  # was 张*: the whole name shown
    ("A", "*"),
    ("张三", "张*"),
    ("Li", "L*"),
    ("欧阳娜娜", "欧***"),
    ("阿卜杜热合曼·买买提", "阿*********"),
]


@pytest.mark.parametrize("value,masked", ID_NUMBERS, ids=[v or "empty" for v, _ in ID_NUMBERS])
def test_id_number_mask(value, masked):
    assert mask_id_number(value) == masked


@pytest.mark.parametrize("value,masked", PHONES, ids=[v or "empty" for v, _ in PHONES])
def test_phone_mask(value, masked):
    assert mask_phone(value) == masked


@pytest.mark.parametrize("value,masked", NAMES, ids=[v or "empty" for v, _ in NAMES])
def test_name_mask(value, masked):
    assert mask_name(value) == masked


@pytest.mark.parametrize(
    "mask,hidden",
    [(mask_id_number, 8), (mask_phone, 4), (mask_name, 1)],
    ids=lambda m: getattr(m, "__name__", str(m)),
)
def test_no_mask_shows_a_whole_value_or_fewer_hidden_characters_than_its_minimum(mask, hidden):
    for length in range(1, 25):
        value = "".join(str(i % 10) for i in range(1, length + 1))
        out = mask(value)
        assert len(out) == length, (value, out)
        assert out != value, value
        assert out.count("*") >= min(hidden, length), (value, out)
        # What shows is the value's own characters in their places.
        assert all(o in ("*", v) for o, v in zip(out, value, strict=True)), (value, out)


@pytest.mark.parametrize(
    "value,masked",
    [
        (date(1990, 5, 17), date(1990, 1, 1)),
        (date(1990, 1, 1), date(1990, 1, 1)),
        (date(1990, 12, 31), date(1990, 1, 1)),
        (date(2000, 2, 29), date(2000, 1, 1)),
        (date(1, 1, 1), date(1, 1, 1)),
        (date(9999, 12, 31), date(9999, 1, 1)),
    ],
    ids=str,
)
def test_birth_date_mask_keeps_the_year_only(value, masked):
    assert mask_birth_date(value) == masked


@pytest.mark.parametrize("value", ["", "x", "机密诊断文本甲", "x" * 10_000])
def test_free_text_mask_shows_nothing_of_the_value_not_even_its_length(value):
    assert mask_text(value) == "***"
