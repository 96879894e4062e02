"""Blind indexes: keyed HMAC of normalised values (HMAC-SHA256, or HMAC-SM3 for keys made
under the national profile).

Every source computes the same index for the same person without storing the plain value, so
the gateway joins on it. Each use gets its own subkey derived with HKDF (over the key's hash),
so indexes of different kinds cannot be compared.

Two keys, on purpose:

* ``person_ref`` (the API's ``personId``, the federation pseudonym) uses the keyring's
  person-pseudonym key, which no rotation touches: partners store personIds.
* ``id_number`` and ``phone`` (equality lookups) use the current *index* key. While an index
  rotation is under way, lookups must accept both the new and the previous key's index:
  query with ``column IN (*indexer.id_number_candidates(value))``. Writers always store
  ``indexer.id_number(value)`` (the new key); ``medfed keys recompute`` rewrites the rest and
  then ends the rotation, after which the candidates are one value again.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security.crypto.algorithms import hash_for, mac
from security.crypto.keyring import DataKey, KeyRing
from security.identifiers import normalise_id_number, normalise_phone

PERSON_REF = "person-ref"
ID_NUMBER = "id-number"
PHONE = "phone"
LOOKUP_KINDS = (ID_NUMBER, PHONE)
_DIGEST_BYTES = 16  # 128 bits, 32 hex chars: collision-free at national scale, short for URLs


def normalise(kind: str, value: str) -> str:
    """The one canonical form (``security.identifiers``) that validation and lookups use too:
    ID numbers (and so personIds) NFKC with ASCII digits, phones E.164 (``+86…``)."""
    if kind == PHONE:
        return normalise_phone(value)
    return normalise_id_number(value)


class BlindIndexer:
    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._subkeys: dict[tuple[str, str], bytes] = {}
        self._generation = keyring.generation

    def _subkey(self, key: DataKey, kind: str) -> bytes:
        if self._generation != self._keyring.generation:
            self._subkeys.clear()  # a key may have been retired
            self._generation = self._keyring.generation
        subkey = self._subkeys.get((key.key_id, kind))
        if subkey is None:
            subkey = self._subkeys[(key.key_id, kind)] = HKDF(
                algorithm=hash_for(key.algorithm),
                length=32,
                salt=None,
                info=f"medfed/{kind}".encode(),
            ).derive(key.material)
        return subkey

    def index_with(self, key: DataKey, kind: str, value: str) -> str:
        digest = mac(key.algorithm, self._subkey(key, kind), normalise(kind, value).encode("utf-8"))
        return digest[:_DIGEST_BYTES].hex()

    def index(self, kind: str, value: str) -> str:
        """The index to store: person-ref under its own key, the others under the current
        index key."""
        if kind == PERSON_REF:
            key = self._keyring.person_ref_key
            if key is None:
                return self._keyring.linkage_key_id  # raises the keyring's clear error
        else:
            key = self._keyring.lookup_index_keys()[0]
        return self.index_with(key, kind, value)

    def candidates(self, kind: str, value: str) -> tuple[str, ...]:
        """Every index a lookup must accept: one normally, two during an index rotation."""
        if kind == PERSON_REF:
            return (self.index(kind, value),)
        return tuple(self.index_with(k, kind, value) for k in self._keyring.lookup_index_keys())

    def person_ref(self, id_number: str) -> str:
        """The federation-wide pseudonym of a person (the API's ``personId``); stable across
        index-key rotations."""
        return self.index(PERSON_REF, id_number)

    def id_number(self, id_number: str) -> str:
        return self.index(ID_NUMBER, id_number)

    def phone(self, phone: str) -> str:
        return self.index(PHONE, phone)

    def id_number_candidates(self, id_number: str) -> tuple[str, ...]:
        return self.candidates(ID_NUMBER, id_number)

    def phone_candidates(self, phone: str) -> tuple[str, ...]:
        return self.candidates(PHONE, phone)
