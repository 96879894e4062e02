"""Field encryption, blind indexes, and the envelope keyring they draw their keys from."""

from security.crypto.blind_index import BlindIndexer
from security.crypto.field_cipher import DecryptionError, FieldCipher
from security.crypto.key_provider import KeyProvider, KeyProviderError, LocalKeyProvider
from security.crypto.keyring import KeyRing, KeyRingError

__all__ = [
    "BlindIndexer",
    "DecryptionError",
    "FieldCipher",
    "KeyProvider",
    "KeyProviderError",
    "KeyRing",
    "KeyRingError",
    "LocalKeyProvider",
]
