"""The field-encryption set, run under both crypto profiles: what a value stored in a source
database must and must not survive."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security.crypto import BlindIndexer, DecryptionError, FieldCipher, KeyRing
from security.crypto.algorithms import AES_256_GCM, SM4_GCM, SM4GCM
from security.crypto.blind_index import PERSON_REF
from security.crypto.keyring import KeyRingError

CELL = {"source": "bureau-zj", "table": "persons", "column": "name_enc", "row_key": "P000001"}


@pytest.fixture(params=["standard", "national"])
def profile(request) -> str:
    return request.param


@pytest.fixture
def ring(data_dir, profile) -> KeyRing:
    ring = KeyRing.open(data_dir, create=True, profile=profile)
    ring.ensure_source("bureau-zj")
    return ring


def encrypt(ring: KeyRing, value: str, **cell) -> bytes:
    return FieldCipher(ring).encrypt(value, **{**CELL, **cell})


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
    assert blob[0] == 2  # every value is written in the version-2 format
    parts = (blob[:header_end], b"bureau-zj", b"persons", b"name_enc", b"P000001")
    aad = b"medfed-field/2" + b"".join(len(p).to_bytes(4, "big") + p for p in parts)
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


def test_a_blob_too_short_or_of_an_unknown_version_is_not_a_ciphertext(ring):
    """Refused before any key is looked up, and said so: not taken for a damaged value."""
    blob = encrypt(ring, "")  # the shortest value: header, nonce and tag, nothing more
    assert FieldCipher(ring).decrypt(blob, **CELL) == ""
    for bad in (blob[:-1], blob[:2], blob[:1], b"\x03" + blob[1:], b"\x00" + blob[1:]):
        with pytest.raises(DecryptionError, match="not a medfed ciphertext"):
            FieldCipher(ring).decrypt(bad, **CELL)


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
    blob = FieldCipher(other).encrypt("张三", **{**CELL, "source": "bureau-sd"})
    with pytest.raises(DecryptionError, match="no key 'dk-bureau-sd-1'"):
        FieldCipher(ring).decrypt(blob, **CELL)


def test_a_key_of_an_algorithm_this_version_cannot_use_fails_as_a_decryption_error(ring):
    """A keyring written by a newer release may hold a key of an algorithm this one does not
    know: its values fail to open with an error naming the key, not an unexpected crash."""
    from security.crypto.keyring import DATA, DataKey

    unknown = DataKey("dk-bureau-zj-9", "XCHACHA20", b"k" * 32, "bureau-zj", DATA)
    ring._mutate(lambda r: r._install(unknown, "2026-12-01T00:00:00Z", kek=""))
    blob = b"\x02\x0edk-bureau-zj-9" + b"\x00" * 40
    with pytest.raises(DecryptionError, match="key 'dk-bureau-zj-9': unknown encryption algorithm"):
        FieldCipher(ring).decrypt(blob, **CELL)
    with pytest.raises(KeyRingError, match="unknown encryption algorithm XCHACHA20"):
        FieldCipher(ring).encrypt_with("x", key_id="dk-bureau-zj-9", **CELL)
    assert FieldCipher(ring).decrypt(encrypt(ring, "张三"), **CELL) == "张三"  # the others open


def test_a_retired_key_no_longer_decrypts(ring):
    blob = encrypt(ring, "张三")
    ring.rotate("bureau-zj")
    ring.retire("dk-bureau-zj-1")
    with pytest.raises(DecryptionError, match="retired"):
        FieldCipher(ring).decrypt(blob, **CELL)


def test_a_long_lived_cipher_stops_opening_values_under_a_key_retired_in_process(ring):
    """The gateway's cipher lives for the whole process and caches each key's primitive; a
    retirement must empty that cache, not only a fresh cipher's."""
    cipher = FieldCipher(ring)
    old = cipher.encrypt("张三", **CELL)
    assert cipher.decrypt(old, **CELL) == "张三"  # the old key's primitive is cached now
    ring.rotate("bureau-zj")
    new = cipher.encrypt("李四", **CELL)
    assert cipher.decrypt(old, **CELL) == "张三"  # a rotation alone keeps the old key working
    ring.retire("dk-bureau-zj-1")
    with pytest.raises(DecryptionError, match="retired"):
        cipher.decrypt(old, **CELL)
    assert cipher.decrypt(new, **CELL) == "李四"  # the current key still opens its values


def test_a_long_lived_cipher_follows_a_retirement_by_another_process(ring, data_dir, monkeypatch):
    import security.crypto.keyring as keyring_module

    cipher = FieldCipher(ring)
    old = cipher.encrypt("张三", **CELL)
    assert cipher.decrypt(old, **CELL) == "张三"
    # `medfed keys rotate` and `retire` run elsewhere, on their own keyring object.
    other = KeyRing.load(data_dir)
    other.rotate("bureau-zj")
    other.retire("dk-bureau-zj-1")
    # The gateway looks at the file at most once a second; make "a second later" now.
    monkeypatch.setattr(keyring_module, "REFRESH_SECONDS", 0.0)
    with pytest.raises(DecryptionError, match="retired"):
        cipher.decrypt(old, **CELL)
    assert cipher.encrypt("x", **CELL)[2:16] == b"dk-bureau-zj-2"


def first_format(ring: KeyRing, value: str, **cell) -> bytes:
    """A version-1 value as gateways before the source binding wrote it: the header, then
    ``|table|column|row_key`` as associated data, nothing of the source."""
    where = {**CELL, **cell}
    key = ring.current_key(where["source"])
    header = b"\x01" + bytes([len(key.key_id)]) + key.key_id.encode()
    aad = b"|".join((header, *(where[k].encode() for k in ("table", "column", "row_key"))))
    aead = SM4GCM(key.material) if key.algorithm == SM4_GCM else AESGCM(key.material)
    nonce = b"n" * 12
    return header + nonce + aead.encrypt(nonce, value.encode(), aad)


def test_a_first_format_value_opens_in_its_cell_only(ring):
    blob = first_format(ring, "张三")
    assert FieldCipher.version_of(blob) == 1 and FieldCipher.key_id_of(blob) == "dk-bureau-zj-1"
    assert FieldCipher(ring).decrypt(blob, **CELL) == "张三"
    for moved in ({"row_key": "P000002"}, {"column": "address_enc"}, {"table": "patients"}):
        with pytest.raises(DecryptionError, match="does not open"):
            FieldCipher(ring).decrypt(blob, **{**CELL, **moved})
    assert FieldCipher.version_of(encrypt(ring, "张三")) == 2  # what is written now


@pytest.mark.parametrize("version", [1, 2])
def test_a_value_under_another_sources_key_is_refused_by_name(ring, version):
    """Row keys collide across institutions: a value copied into another source's row with
    the same address must not open there, in either format, nor be written under its key."""
    ring.ensure_source("bureau-sd")
    blob = first_format(ring, "张三") if version == 1 else encrypt(ring, "张三")
    cipher = FieldCipher(ring)
    assert cipher.decrypt(blob, **CELL) == "张三"  # the control: in its own source
    with pytest.raises(DecryptionError, match="key of source 'bureau-zj', not of 'bureau-sd'"):
        cipher.decrypt(blob, **{**CELL, "source": "bureau-sd"})
    with pytest.raises(DecryptionError, match="key of source 'bureau-zj', not of 'bureau-sd'"):
        cipher.encrypt_with("张三", key_id="dk-bureau-zj-1", **{**CELL, "source": "bureau-sd"})
    sd = cipher.encrypt("李四", **{**CELL, "source": "bureau-sd"})
    assert FieldCipher.key_id_of(sd) == "dk-bureau-sd-1"
    assert cipher.decrypt(sd, **{**CELL, "source": "bureau-sd"}) == "李四"


MALFORMED_BLOBS = {
    "empty": b"",
    "version only": b"\x01",
    "no key named": b"\x01\x00",
    "no key named, long": b"\x01\x00" + b"\x00" * 40,
    "no key named, then text": b"\x01\x00" + b"k" * 40,
    "version 3": b"\x03\x03abc" + b"\x00" * 28,
    "version 0": b"\x00\x03abc",
    "id past the end": b"\x01\x05abc",
    "id 255 past the end": b"\x01\xffabc",
    "not ASCII": b"\x01\x02\xc3\xa9" + b"\x00" * 28,
    "control character": b"\x01\x03a\x00c" + b"\x00" * 28,
    "UTF-16 text": "\x01\x03abc".encode("utf-16"),
}


@pytest.mark.parametrize("blob", MALFORMED_BLOBS.values(), ids=MALFORMED_BLOBS.keys())
def test_key_id_of_refuses_a_malformed_blob(blob):
    with pytest.raises(DecryptionError, match="not a medfed ciphertext"):
        FieldCipher.key_id_of(blob)


def test_key_id_of_reads_the_header_alone_at_its_boundaries(ring):
    """Key counting reads only the first 257 bytes; the header is enough, of any id length."""
    blob = encrypt(ring, "张三")
    header = blob[: 2 + blob[1]]
    assert FieldCipher.key_id_of(header) == "dk-bureau-zj-1"
    assert FieldCipher.key_id_of(blob[:257]) == "dk-bureau-zj-1"
    with pytest.raises(DecryptionError):
        FieldCipher.key_id_of(header[:-1])
    assert FieldCipher.key_id_of(b"\x01\x01k") == FieldCipher.key_id_of(b"\x02\x01k") == "k"
    longest = b"\x01\xff" + b"k" * 255
    assert FieldCipher.key_id_of(longest) == "k" * 255


def test_blind_indexes_are_deterministic_normalised_and_kind_separated(ring):
    indexer = BlindIndexer(ring)
    id_no = "33010219900101123x"
    assert indexer.id_number(id_no) == indexer.id_number(" 33010219900101123X ")
    assert indexer.phone("138-0000-0000") == indexer.phone("13800000000")
    # Kinds are separated: the same input never gives the same index under two kinds.
    assert indexer.person_ref(id_no) != indexer.id_number(id_no)
    assert indexer.phone("13800000000") != indexer.id_number("13800000000")
    assert all(len(i) == 32 for i in (indexer.person_ref(id_no), indexer.id_number(id_no)))
    assert indexer.id_number_candidates(id_no) == (indexer.id_number(id_no),)


def reference_index(key, kind: str, value: str) -> str:
    """The blind-index format of docs/keys.md, which every source must reproduce: an HKDF
    subkey of 32 bytes (info ``medfed/<kind>``), then the HMAC of the normalised value,
    truncated to 16 bytes (32 hex characters)."""
    digest = hashes.SM3() if key.algorithm == "HMAC-SM3" else hashes.SHA256()
    subkey = HKDF(digest, 32, None, f"medfed/{kind}".encode()).derive(key.material)
    h = HMAC(subkey, digest)
    h.update(value.encode())
    return h.finalize()[:16].hex()


def test_blind_indexes_match_the_published_format_under_the_right_keys(ring):
    """A partner source computing indexes from docs/keys.md finds the same persons: personIds
    under the person-pseudonym key, lookups under the current index key."""
    indexer = BlindIndexer(ring)
    person_key, index_key = ring.person_ref_key, ring.index_key(ring.index_current)
    assert person_key is not None and person_key.material != index_key.material
    id_no = "33010219900101123X"
    assert indexer.person_ref(id_no) == reference_index(person_key, "person-ref", id_no)
    assert indexer.id_number(id_no) == reference_index(index_key, "id-number", id_no)
    assert indexer.phone("13800000000") == reference_index(index_key, "phone", "+8613800000000")
    # Control: the reference is sensitive to the key, so the equalities above are not vacuous.
    assert indexer.person_ref(id_no) != reference_index(index_key, "person-ref", id_no)


def test_an_index_rotation_writes_under_the_new_key_and_looks_up_under_both(ring):
    indexer = BlindIndexer(ring)  # long-lived, as in a running gateway
    id_no, phone = "330102199001011234", "13800000000"
    person, old_id, old_phone = (
        indexer.person_ref(id_no),
        indexer.id_number(id_no),
        indexer.phone(phone),
    )
    assert indexer.candidates(PERSON_REF, id_no) == (person,)
    ring.rotate_index()
    new_key = ring.index_key(ring.index_current)
    new_id = indexer.id_number(id_no)
    assert new_id == reference_index(new_key, "id-number", id_no) != old_id
    assert indexer.id_number_candidates(id_no) == (new_id, old_id)  # the current key first
    assert indexer.phone_candidates(phone) == (indexer.phone(phone), old_phone)
    assert indexer.phone(phone) != old_phone
    # personIds are untouched by index rotations, and a personId lookup accepts one value.
    assert indexer.person_ref(id_no) == person
    assert indexer.candidates(PERSON_REF, id_no) == (person,)
    # Once the rotation ends, the old key is retired: one candidate again, and the long-lived
    # indexer keeps nothing derived from the retired key's material.
    previous = ring.finish_index_rotation()
    assert indexer.id_number_candidates(id_no) == (new_id,)
    assert indexer._subkeys and not [k for k in indexer._subkeys if k[0] == previous]
    assert indexer.person_ref(id_no) == person


def test_same_keys_same_indexes_across_sources(ring, data_dir, profile):
    """Two gateways with the same keyring index a person identically (the federation join)."""
    again = KeyRing.load(data_dir)
    assert BlindIndexer(again).person_ref("330102199001011234") == BlindIndexer(ring).person_ref(
        "330102199001011234"
    )
    assert again.index_key(again.index_current).algorithm == (
        "HMAC-SM3" if profile == "national" else "HMAC-SHA256"
    )
