"""The field-encryption set, run under both crypto profiles: what a value stored in a source
database must and must not survive."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from security.crypto import BlindIndexer, DecryptionError, FieldCipher, KeyRing
from security.crypto.algorithms import AES_256_GCM, SM4_GCM, SM4GCM

CELL = {"table": "persons", "column": "name_enc", "row_key": "P000001"}


@pytest.fixture(params=["standard", "national"])
def profile(request) -> str:
    return request.param


@pytest.fixture
def ring(data_dir, profile) -> KeyRing:
    ring = KeyRing.open(data_dir, create=True, profile=profile)
    ring.ensure_source("bureau-zj")
    return ring


def encrypt(ring: KeyRing, value: str, **cell) -> bytes:
    return FieldCipher(ring).encrypt(value, source="bureau-zj", **{**CELL, **cell})


@pytest.mark.parametrize("value", ["张三", "", "330102199001011234", "x" * 5000, "😀 emoji"])
def test_round_trip(ring, value):
    blob = encrypt(ring, value)
    assert FieldCipher(ring).decrypt(blob, **CELL) == value
    assert value.encode() not in blob or value == ""


def test_profile_chooses_the_algorithm(ring, profile):
    key = ring.current_key("bureau-zj")
    assert key.algorithm == (SM4_GCM if profile == "national" else AES_256_GCM)
    # The ciphertext body opens with that primitive from `cryptography`, and only with it.
    blob = encrypt(ring, "张三")
    header_end = 2 + blob[1]
    nonce, body = blob[header_end : header_end + 12], blob[header_end + 12 :]
    aad = b"%s|persons|name_enc|P000001" % blob[:header_end]
    aead = SM4GCM(key.material) if profile == "national" else AESGCM(key.material)
    assert aead.decrypt(nonce, body, aad).decode() == "张三"


@pytest.mark.parametrize(
    "moved", [{"row_key": "P000002"}, {"column": "address_enc"}, {"table": "patients"}]
)
def test_a_value_moved_to_another_cell_fails(ring, moved):
    blob = encrypt(ring, "张三")
    with pytest.raises(DecryptionError, match="does not open"):
        FieldCipher(ring).decrypt(blob, **{**CELL, **moved})


def test_swapping_two_cells_fails_both(ring):
    a, b = encrypt(ring, "张三", row_key="A"), encrypt(ring, "李四", row_key="B")
    cipher = FieldCipher(ring)
    for blob, row in ((a, "B"), (b, "A")):
        with pytest.raises(DecryptionError):
            cipher.decrypt(blob, **{**CELL, "row_key": row})


def test_every_byte_of_the_ciphertext_is_authenticated(ring):
    blob = encrypt(ring, "330102199001011234")
    cipher = FieldCipher(ring)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionError):
            cipher.decrypt(bytes(tampered), **CELL)
    for cut in (0, 1, 5, len(blob) - 1):
        with pytest.raises(DecryptionError):
            cipher.decrypt(blob[:cut], **CELL)


def test_every_ciphertext_names_its_key(ring):
    first = encrypt(ring, "张三")
    assert FieldCipher.key_id_of(first) == "dk-bureau-zj-1"
    ring.rotate("bureau-zj")
    second = encrypt(ring, "张三")
    assert FieldCipher.key_id_of(second) == "dk-bureau-zj-2"
    cipher = FieldCipher(ring)
    assert cipher.decrypt(first, **CELL) == cipher.decrypt(second, **CELL) == "张三"


def test_a_ciphertext_under_an_unknown_key_fails_clearly(ring, tmp_path):
    other = KeyRing.open(tmp_path / "elsewhere", create=True)
    other.ensure_source("bureau-sd")
    blob = FieldCipher(other).encrypt("张三", source="bureau-sd", **CELL)
    with pytest.raises(DecryptionError, match="no key 'dk-bureau-sd-1'"):
        FieldCipher(ring).decrypt(blob, **CELL)


def test_a_retired_key_no_longer_decrypts(ring):
    blob = encrypt(ring, "张三")
    ring.rotate("bureau-zj")
    ring.retire("dk-bureau-zj-1")
    with pytest.raises(DecryptionError, match="retired"):
        FieldCipher(ring).decrypt(blob, **CELL)


def test_blind_indexes_are_deterministic_normalised_and_kind_separated(ring):
    indexer = BlindIndexer(ring)
    id_no = "33010219900101123x"
    assert indexer.id_number(id_no) == indexer.id_number(" 33010219900101123X ")
    assert indexer.phone("138-0000-0000") == indexer.phone("13800000000")
    assert len({indexer.person_ref(id_no), indexer.id_number(id_no), indexer.phone(id_no)}) == 3
    assert all(len(i) == 32 for i in (indexer.person_ref(id_no), indexer.id_number(id_no)))
    assert indexer.id_number_candidates(id_no) == (indexer.id_number(id_no),)


def test_same_keys_same_indexes_across_sources(ring, data_dir, profile):
    """Two gateways with the same keyring index a person identically (the federation join)."""
    again = KeyRing.load(data_dir)
    assert BlindIndexer(again).person_ref("330102199001011234") == BlindIndexer(ring).person_ref(
        "330102199001011234"
    )
    assert again.index_key(again.index_current).algorithm == (
        "HMAC-SM3" if profile == "national" else "HMAC-SHA256"
    )
