"""Blind indexes: keyed HMAC-SHA256 of normalised values under the federation linkage key.

Every source computes the same index for the same person without storing the plain value,
so the gateway joins on it. Each use (person reference, ID-number lookup, phone lookup) gets
its own subkey derived with HKDF, so indexes of different kinds cannot be compared.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security.crypto.keyring import KeyRing

PERSON_REF = "person-ref"
ID_NUMBER = "id-number"
PHONE = "phone"
_HEX_CHARS = 32  # 128 bits: collision-free at national scale, short enough for URLs


def _normalise(kind: str, value: str) -> str:
    if kind == PHONE:
        return "".join(ch for ch in value if ch.isdigit())
    return value.strip().upper()


class BlindIndexer:
    def __init__(self, keyring: KeyRing) -> None:
        self._subkeys = {
            kind: HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=f"medfed/{kind}".encode()
            ).derive(keyring.linkage_key)
            for kind in (PERSON_REF, ID_NUMBER, PHONE)
        }

    def index(self, kind: str, value: str) -> str:
        digest = hmac.new(
            self._subkeys[kind], _normalise(kind, value).encode("utf-8"), hashlib.sha256
        )
        return digest.hexdigest()[:_HEX_CHARS]

    def person_ref(self, id_number: str) -> str:
        """The federation-wide pseudonym of a person (the API's ``personId``)."""
        return self.index(PERSON_REF, id_number)

    def id_number(self, id_number: str) -> str:
        return self.index(ID_NUMBER, id_number)

    def phone(self, phone: str) -> str:
        return self.index(PHONE, phone)
