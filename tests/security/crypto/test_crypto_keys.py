"""Envelope keys: data keys stored only wrapped by a KEK kept in a file of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.config import load_settings
from gateway.startup import open_keyring
from security.crypto import (
    BlindIndexer,
    DecryptionError,
    FieldCipher,
    KeyProvider,
    KeyRing,
    KeyRingError,
    LocalKeyProvider,
)
from tests.support.crypto import v1_keyring

CELL = {"source": "bureau-zj", "table": "persons", "column": "name_enc", "row_key": "P1"}


@pytest.fixture(params=["standard", "national"])
def profile(request) -> str:
    return request.param


@pytest.fixture
def ring(data_dir, profile) -> KeyRing:
    ring = KeyRing.open(data_dir, create=True, profile=profile)
    ring.ensure_source("bureau-zj")
    ring.ensure_source("hospital-a")
    return ring


def secrets_of(ring: KeyRing) -> dict[str, bytes]:
    kek = json.loads(LocalKeyProvider.location(ring.path.parent.parent).read_text())
    found = {f"kek:{k}": base64.b64decode(v["key"]) for k, v in kek["keys"].items()}
    found.update({k: v.material for k, v in ring.data_keys.items()})
    found.update({k: v.material for k, v in ring.index_keys.items()})
    found["person-ref"] = ring.linkage_key
    return found


def forms(secret: bytes) -> list[bytes]:
    return [secret, base64.b64encode(secret), secret.hex().encode(), secret.hex().upper().encode()]


def test_keyring_file_holds_no_key_in_the_clear(ring):
    text = ring.path.read_bytes()
    for name, secret in secrets_of(ring).items():
        assert not any(form in text for form in forms(secret)), name
    entries = json.loads(text)["keys"]
    assert all(e["kek"] == "kek-1" and "wrapped" in e for e in entries.values())


def test_both_files_are_owner_only_and_apart(ring, data_dir):
    kek_path = LocalKeyProvider.location(data_dir)
    assert kek_path != ring.path and kek_path.exists()
    for path in (ring.path, kek_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_kek_absent_from_reprs_and_errors(ring, data_dir):
    kek = json.loads(LocalKeyProvider.location(data_dir).read_text())["keys"]["kek-1"]["key"]
    raw = base64.b64decode(kek)
    texts = [
        repr(ring),
        repr(ring.provider),
        repr(ring.current_key("bureau-zj")),
        str(ring.data_keys),
        repr(ring.records),
    ]
    entries = json.loads(ring.path.read_text())
    entries["keys"]["dk-bureau-zj-1"]["wrapped"] = base64.b64encode(
        b"\x01\x05kek-1" + os.urandom(60)
    ).decode()
    ring.path.write_text(json.dumps(entries))
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(data_dir)
    texts.append(str(caught.value))
    for text in texts:
        assert not any(form in text.encode() for form in forms(raw))
        assert raw.decode("latin-1") not in text and repr(raw) not in text


@pytest.mark.parametrize("how", ["flip", "swap", "alg"])
def test_a_tampered_wrapped_key_fails_loudly(ring, data_dir, how):
    raw = json.loads(ring.path.read_text())
    keys = raw["keys"]
    if how == "flip":
        wrapped = bytearray(base64.b64decode(keys["dk-bureau-zj-1"]["wrapped"]))
        wrapped[-3] ^= 0x40
        keys["dk-bureau-zj-1"]["wrapped"] = base64.b64encode(bytes(wrapped)).decode()
    elif how == "swap":  # a valid wrapped key, moved under another key's id
        keys["dk-bureau-zj-1"]["wrapped"] = keys["dk-hospital-a-1"]["wrapped"]
    else:  # claim another algorithm of the same key size
        keys["bi-1"]["alg"] = (
            "HMAC-SM3" if keys["bi-1"]["alg"] == "HMAC-SHA256" else ("HMAC-SHA256")
        )
    ring.path.write_text(json.dumps(raw))
    with pytest.raises(KeyRingError, match=r"dk-bureau-zj-1|bi-1") as caught:
        KeyRing.load(data_dir)
    assert "altered" in str(caught.value)


def test_missing_kek_file_refuses_to_start_and_makes_no_new_one(ring, data_dir):
    kek_path = LocalKeyProvider.location(data_dir)
    kek_path.unlink()
    with pytest.raises(KeyRingError, match=r"key-encryption key file .* is missing"):
        KeyRing.load(data_dir)
    settings = load_settings(None, data_dir=data_dir, env={})
    with pytest.raises(KeyRingError, match="missing"):
        open_keyring(settings, create=True)
    assert not kek_path.exists()


def test_kek_readable_by_others_is_refused(ring, data_dir):
    LocalKeyProvider.location(data_dir).chmod(0o644)
    with pytest.raises(KeyRingError, match="chmod 600"):
        KeyRing.load(data_dir)


def test_rotate_kek_rewraps_everything_and_old_kek_can_go(ring, data_dir):
    blob = FieldCipher(ring).encrypt("张三", **CELL)
    person = BlindIndexer(ring).person_ref("330102199001011234")
    assert ring.rotate_kek() == "kek-2"
    entries = json.loads(ring.path.read_text())["keys"]
    assert {e["kek"] for e in entries.values()} == {"kek-2"}
    ring.provider.retire("kek-1")
    again = KeyRing.load(data_dir)
    assert FieldCipher(again).decrypt(blob, **CELL) == "张三"
    assert BlindIndexer(again).person_ref("330102199001011234") == person


def test_a_running_reader_follows_a_kek_rotation_by_another_process(ring, data_dir):
    other = KeyRing.load(data_dir)
    other.rotate_kek()
    other.rotate("bureau-zj")
    blob = FieldCipher(other).encrypt("张三", **CELL)
    assert FieldCipher(ring).decrypt(blob, **CELL) == "张三"


def test_two_processes_adding_sources_lose_no_key(ring, data_dir):
    a, b = KeyRing.load(data_dir), KeyRing.load(data_dir)
    a.ensure_source("pharmacy-1")
    b.ensure_source("pharmacy-2")  # b never re-read the file: the lock makes it merge
    final = KeyRing.load(data_dir)
    assert {"pharmacy-1", "pharmacy-2", "bureau-zj"} <= set(final.current)


def test_one_keyring_holds_both_profiles(data_dir):
    ring = KeyRing.open(data_dir, create=True, profile="standard")
    ring.ensure_source("bureau-zj")
    old = FieldCipher(ring).encrypt("张三", **CELL)
    national = KeyRing.load(data_dir, profile="national")
    assert national.rotate("bureau-zj").algorithm == "SM4-GCM"
    new = FieldCipher(national).encrypt("李四", **CELL)
    cipher = FieldCipher(KeyRing.load(data_dir))
    assert (cipher.decrypt(old, **CELL), cipher.decrypt(new, **CELL)) == ("张三", "李四")


def test_the_provider_protocol_is_what_the_keyring_relies_on(ring):
    assert isinstance(ring.provider, KeyProvider)
    wrapped = ring.provider.wrap("dk-x-1", b"k" * 32)
    assert ring.provider.kek_of(wrapped) == ring.provider.kek_id
    assert ring.provider.unwrap("dk-x-1", wrapped) == b"k" * 32
    with pytest.raises(Exception, match="does not open"):
        ring.provider.unwrap("dk-x-2", wrapped)


# -- migration of a format-1 keyring (plain keys) ---------------------------------------------
def v1_index(linkage: bytes, kind: str, value: str) -> str:
    subkey = HKDF(hashes.SHA256(), 32, None, f"medfed/{kind}".encode()).derive(linkage)
    return hmac.new(subkey, value.encode(), hashlib.sha256).hexdigest()[:32]


def test_a_v1_keyring_is_migrated_transparently(data_dir):
    linkage, blob = v1_keyring(data_dir)
    settings = load_settings(None, data_dir=data_dir, env={})
    ring = open_keyring(settings, create=False)
    raw = json.loads(ring.path.read_text())
    assert raw["format"] == "medfed-keyring/2"
    assert not any(f in ring.path.read_bytes() for f in forms(linkage))
    assert FieldCipher(ring).decrypt(blob, **CELL) == "张三"
    indexer = BlindIndexer(ring)
    id_no = "330102199001011234"
    assert indexer.person_ref(id_no) == v1_index(linkage, "person-ref", id_no)
    # Stored indexes keep matching: lookups accept bi-1 (the v1 linkage key) while the
    # rotation to a key of its own, started by the migration, is under way.
    assert v1_index(linkage, "id-number", id_no) in indexer.id_number_candidates(id_no)
    # Phones are indexed in their E.164 form (docs/keys.md: recompute older phone indexes).
    assert v1_index(linkage, "phone", "+8613800000000") in indexer.phone_candidates("13800000000")
    # ...and from then on it loads as format 2, with the same answers.
    again = KeyRing.load(data_dir)
    assert FieldCipher(again).decrypt(blob, **CELL) == "张三"


def test_a_damaged_ciphertext_still_fails_after_migration(data_dir):
    _, blob = v1_keyring(data_dir)
    ring = KeyRing.load(data_dir)
    with pytest.raises(DecryptionError):
        FieldCipher(ring).decrypt(blob[:-1] + bytes([blob[-1] ^ 1]), **CELL)


def test_crypto_profile_setting_is_checked(tmp_path, data_dir):
    from gateway.config import ConfigError
    from gateway.startup import crypto_profile

    config = tmp_path / "medfed.toml"
    config.write_text('[crypto]\nprofile = "quantum"\n')
    with pytest.raises(ConfigError, match=r"crypto\.profile: 'quantum' is not a crypto profile"):
        load_settings(config, data_dir=data_dir, env={})
    # The environment's value replaces the file's before either is checked.
    settings = load_settings(config, data_dir=data_dir, env={"MEDFED_CRYPTO_PROFILE": "national"})
    assert crypto_profile(settings) == "national"


def test_a_migration_cut_short_by_a_crash_recovers_from_the_first_format_copy(data_dir):
    _, blob = v1_keyring(data_dir)
    first_format = KeyRing.location(data_dir).read_bytes()
    KeyRing.load(data_dir)
    backup = KeyRing.location(data_dir).with_name("keyring.v1-backup.json")
    assert not backup.exists()  # removed once the new file reopened under a fresh provider
    # A power loss after the rename but before the KEK file reached the disk: the new keyring
    # names a KEK that is gone, and the copy is still there.
    backup.write_bytes(first_format)
    backup.chmod(0o600)
    LocalKeyProvider.location(data_dir).unlink()
    ring = KeyRing.load(data_dir)
    assert FieldCipher(ring).decrypt(blob, **CELL) == "张三"
    assert not backup.exists()
    assert FieldCipher(KeyRing.load(data_dir)).decrypt(blob, **CELL) == "张三"


def test_the_kek_file_is_made_once_and_every_provider_reads_the_winner(data_dir):
    path = LocalKeyProvider.location(data_dir)
    first = LocalKeyProvider(path, create=True)
    second = LocalKeyProvider(path, create=True)  # finds the file: must not make its own
    wrapped = first.wrap("dk-x-1", b"k" * 32)
    assert second.unwrap("dk-x-1", wrapped) == b"k" * 32
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_migrated_index_key_is_replaced_by_one_apart_from_the_personid_key(data_dir):
    linkage, _ = v1_keyring(data_dir)
    ring = KeyRing.load(data_dir)
    indexer = BlindIndexer(ring)
    id_no = "330102199001011234"
    # bi-1 is the personId key's material: rotating it alone would protect nothing.
    assert ring.shared_index_keys() == ["bi-1"]
    assert any("bi-1 is the personId key's material" in w for w in ring.warnings())
    assert ring.index_previous == "bi-1" and ring.index_current == "bi-2"
    fresh = ring.index_key("bi-2").material
    assert fresh != linkage and fresh != ring.linkage_key
    assert indexer.id_number(id_no) != v1_index(linkage, "id-number", id_no)  # writers: bi-2
    # What `medfed keys recompute` does once every index is rewritten:
    assert ring.finish_index_rotation() == "bi-1"
    again = KeyRing.load(data_dir)
    assert again.shared_index_keys() == [] and again.warnings() == []
    assert BlindIndexer(again).id_number_candidates(id_no) == (indexer.id_number(id_no),)
    assert BlindIndexer(again).person_ref(id_no) == v1_index(linkage, "person-ref", id_no)


# -- encryptions counted per GCM key -------------------------------------------------------------
def test_encryptions_are_counted_per_key_in_blocks_that_never_undercount(ring):
    from security.crypto import usage

    cipher = FieldCipher(ring)
    for _ in range(usage.BLOCK + 1):  # one past a block: a second block is reserved
        cipher.encrypt("x", **CELL)
    counted = ring.usage.counts()["dk-bureau-zj-1"]
    assert counted == 2 * usage.BLOCK >= usage.BLOCK + 1
    FieldCipher(KeyRing.load(ring.path.parent.parent)).encrypt("x", **CELL)  # another process
    assert ring.usage.counts()["dk-bureau-zj-1"] == 3 * usage.BLOCK
    assert "dk-hospital-a-1" not in ring.usage.counts()
    assert ring.warnings() == []


def test_a_key_near_the_gcm_limit_is_reported_and_at_the_limit_refused(ring, caplog):
    from security.crypto import usage

    ring.usage.reserve("dk-bureau-zj-1", usage.WARN_AT - usage.BLOCK - 1)
    FieldCipher(ring).encrypt("x", **CELL)  # its block ends one short of the warning
    assert ring.warnings() == [] and not caplog.records
    with caplog.at_level("WARNING", "medfed.crypto"):
        FieldCipher(ring).encrypt("x", **CELL)  # this block crosses 2^30
    assert "dk-bureau-zj-1 has made" in caplog.text and "medfed keys rotate" in caplog.text
    assert any("dk-bureau-zj-1" in w for w in ring.warnings())
    ring.usage.reserve("dk-bureau-zj-1", usage.LIMIT - ring.usage.counts()["dk-bureau-zj-1"])
    with pytest.raises(KeyRingError, match="reached the AES-GCM limit"):
        FieldCipher(ring).encrypt("x", **CELL)
    ring.rotate("bureau-zj")  # the way out: a new key, counted from zero
    assert FieldCipher(ring).encrypt("x", **CELL)[2:16] == b"dk-bureau-zj-2"


def test_the_last_block_may_end_exactly_at_the_gcm_limit(ring):
    from security.crypto import usage

    ring.usage.reserve("dk-bureau-zj-1", usage.LIMIT - usage.BLOCK)
    cipher = FieldCipher(ring)
    for _ in range(usage.BLOCK):  # the whole last block: its 4096th encryption is the 2^32nd
        cipher.encrypt("x", **CELL)
    assert ring.usage.counts()["dk-bureau-zj-1"] == usage.LIMIT
    with pytest.raises(KeyRingError, match="reached the AES-GCM limit"):
        cipher.encrypt("x", **CELL)


def test_a_damaged_usage_file_refuses_encryption(ring):
    ring.usage.path.write_text("{not json")
    with pytest.raises(KeyRingError, match="usage file"):
        FieldCipher(ring).encrypt("x", **CELL)
