"""Per-partner pseudonyms for de-identified extracts.

A person's pseudonym in an extract is a keyed hash of their federation pseudonym under a key
of the partner's own, derived (HKDF) from the keyring's person-pseudonym key with the
partner's code in the ``info``. The same partner sees the same person under the same
pseudonym in every extract (longitudinal research works); two partners' pseudonyms of one
person are unrelated, so their extracts cannot be joined, and neither maps back to the
federation's ``personId`` without the keyring.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security.crypto.algorithms import hash_for, mac
from security.crypto.keyring import KeyRing

_BYTES = 12  # 96 bits, 24 hex characters: collision-free for any extract, short to read


class PartnerPseudonyms:
    def __init__(self, keyring: KeyRing, partner: str) -> None:
        key = keyring.person_ref_key
        if key is None:
            raise ValueError("the keyring has no person-pseudonym key")
        self._algorithm = key.algorithm
        self._key = HKDF(
            algorithm=hash_for(key.algorithm),
            length=32,
            salt=None,
            info=f"medfed/extract-pseudonym/{partner}".encode(),
        ).derive(key.material)

    def of(self, person_ref: str) -> str:
        return mac(self._algorithm, self._key, person_ref.encode("utf-8"))[:_BYTES].hex()
