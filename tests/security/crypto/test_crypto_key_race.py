"""Several real processes on one data directory at once, many rounds: no key is ever lost.

Each round forks its processes and releases them together (``tests.support.keyring_race``),
so they create, migrate or rewrite the key files at the same moment, the way a gateway and
its subgraphs starting together on one data directory do. After every round the keyring is
opened from disk under a fresh provider, as a restart would, and every value every process
wrote (and one written before the round) must decrypt.

``MEDFED_KEY_RACE_ROUNDS`` sets the rounds (default 20; ``make key-race`` runs 200).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from security.crypto import FieldCipher, KeyRing, LocalKeyProvider
from security.crypto.keyring import V1_BACKUP
from tests.support.crypto import v1_keyring
from tests.support.keyring_race import b64, race

ROUNDS = int(os.environ.get("MEDFED_KEY_RACE_ROUNDS", "20"))
PROCESSES = 4
CELL = {"table": "persons", "column": "name_enc"}


def reopen_and_decrypt(data_dir: Path, values: list[dict]) -> None:
    """What a restart does: a fresh provider, the files from disk, every value decrypts."""
    ring = KeyRing.load(data_dir, provider=LocalKeyProvider(LocalKeyProvider.location(data_dir)))
    cipher = FieldCipher(ring)
    for value in values:
        blob = base64.b64decode(value["blob"])
        assert (
            cipher.decrypt(blob, source=value["source"], row_key=value["row_key"], **CELL)
            == value["plain"]
        )
    keys_dir = data_dir / "keys"
    assert not (keys_dir / V1_BACKUP).exists()
    assert not [p.name for p in keys_dir.iterdir() if p.name.endswith(".tmp")]


def written(results: list[dict]) -> list[dict]:
    failures = [r["error"] for r in results if not r["ok"]]
    assert not failures, failures
    return [v for r in results for v in r["values"]]


@pytest.mark.slow
def test_processes_migrating_a_first_format_keyring_together_lose_no_key(tmp_path):
    for round_no in range(ROUNDS):
        data_dir = tmp_path / f"r{round_no}" / "data"
        data_dir.mkdir(parents=True)
        _, before = v1_keyring(data_dir)
        results = race(data_dir, [("open", f"p{i}") for i in range(PROCESSES)])
        values = written(results)
        values.append(
            {
                "source": "bureau-zj",
                "blob": base64.b64encode(before).decode(),
                "row_key": "P1",
                "plain": "张三",
            }
        )
        reopen_and_decrypt(data_dir, values)
        assert json.loads(KeyRing.location(data_dir).read_text())["format"] == "medfed-keyring/2"


@pytest.mark.slow
def test_processes_creating_a_keyring_together_share_one(tmp_path):
    for round_no in range(max(ROUNDS // 4, 3)):
        data_dir = tmp_path / f"r{round_no}" / "data"
        data_dir.mkdir(parents=True)
        results = race(data_dir, [("open", f"p{i}") for i in range(PROCESSES)])
        reopen_and_decrypt(data_dir, written(results))


@pytest.mark.slow
def test_retiring_a_kek_while_others_rotate_drops_no_kek_in_use(tmp_path):
    for round_no in range(max(ROUNDS // 4, 3)):
        data_dir = tmp_path / f"r{round_no}" / "data"
        data_dir.mkdir(parents=True)
        ring = KeyRing.open(data_dir, create=True)
        ring.ensure_source("bureau-zj")
        blob = FieldCipher(ring).encrypt("张三", source="bureau-zj", row_key="P1", **CELL)
        ring.rotate_kek()  # kek-1 now wraps nothing and may be retired
        results = race(data_dir, [("rotate-kek",), ("retire-kek", "kek-1"), ("rotate-kek",)])
        written(results)
        reopen_and_decrypt(
            data_dir, [{"source": "bureau-zj", "blob": b64(blob), "row_key": "P1", "plain": "张三"}]
        )
        keks = json.loads(LocalKeyProvider.location(data_dir).read_text())["keys"]
        assert sorted(keks) == ["kek-2", "kek-3", "kek-4"]
