"""Which primitive stands behind each algorithm name a key records, and the two profiles.

Every key in the keyring records its algorithm, so a keyring may hold keys of both profiles at
once (a deployment switching to the national profile keeps reading what the old keys wrote).
The profile only chooses the algorithm of keys created from now on.

All primitives come from ``cryptography``: AES-256-GCM (``AESGCM``), SM4-GCM (``algorithms.SM4``
in GCM mode), HMAC-SHA256 and HMAC-SM3 (``hmac.HMAC`` with ``hashes.SM3``), HKDF over either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AES_256_GCM = "AES-256-GCM"
SM4_GCM = "SM4-GCM"
HMAC_SHA256 = "HMAC-SHA256"
HMAC_SM3 = "HMAC-SM3"

AEAD_KEY_BYTES = {AES_256_GCM: 32, SM4_GCM: 16}
MAC_KEY_BYTES = {HMAC_SHA256: 32, HMAC_SM3: 32}
TAG_BYTES = 16


class Aead(Protocol):
    """The shape of ``AESGCM``: ``InvalidTag`` on any failure to authenticate."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


class SM4GCM:
    """SM4 in GCM mode with the ``AESGCM`` calling convention (ciphertext || 16-byte tag).

    ``cryptography`` offers SM4-GCM only through the ``Cipher`` API; this adapter lets the
    field cipher and the key wrapper treat both profiles alike.
    """

    def __init__(self, key: bytes) -> None:
        self._algorithm = algorithms.SM4(key)

    def __repr__(self) -> str:
        return "SM4GCM(<key hidden>)"

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        encryptor = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        if associated_data:
            encryptor.authenticate_additional_data(associated_data)
        body = encryptor.update(data) + encryptor.finalize()
        return body + encryptor.tag

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        from cryptography.exceptions import InvalidTag

        if len(data) < TAG_BYTES:
            raise InvalidTag()
        body, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
        decryptor = Cipher(self._algorithm, modes.GCM(nonce, tag)).decryptor()
        if associated_data:
            decryptor.authenticate_additional_data(associated_data)
        return decryptor.update(body) + decryptor.finalize()


def aead_for(algorithm: str, key: bytes) -> Aead:
    """The AEAD for a key of ``algorithm``; ``ValueError`` for an unknown name or bad length."""
    if AEAD_KEY_BYTES.get(algorithm) != len(key):
        raise ValueError(
            f"not a {algorithm} key"
            if algorithm in AEAD_KEY_BYTES
            else f"unknown encryption algorithm {algorithm}"
        )
    return AESGCM(key) if algorithm == AES_256_GCM else SM4GCM(key)


def hash_for(mac_algorithm: str) -> hashes.HashAlgorithm:
    if mac_algorithm == HMAC_SHA256:
        return hashes.SHA256()
    if mac_algorithm == HMAC_SM3:
        return hashes.SM3()
    raise ValueError(f"unknown MAC algorithm {mac_algorithm}")


def mac(mac_algorithm: str, key: bytes, message: bytes) -> bytes:
    h = hmac.HMAC(key, hash_for(mac_algorithm))
    h.update(message)
    return h.finalize()


@dataclass(frozen=True)
class Profile:
    """The algorithms given to keys created under a profile."""

    name: str
    data: str  # field encryption
    index: str  # blind indexes and the person pseudonym
    kek: str  # wrapping data keys


PROFILES = {
    "standard": Profile("standard", AES_256_GCM, HMAC_SHA256, AES_256_GCM),
    "national": Profile("national", SM4_GCM, HMAC_SM3, SM4_GCM),
}
DEFAULT_PROFILE = "standard"


def profile(name: str | None) -> Profile:
    try:
        return PROFILES[name or DEFAULT_PROFILE]
    except KeyError:
        raise ValueError(f"unknown crypto profile '{name}' (use {' or '.join(PROFILES)})") from None
