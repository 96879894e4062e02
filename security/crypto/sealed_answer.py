"""Sealed answers, format 2: one HPKE context per response, and the gateway's signature.

Shared by the gateway (which seals and signs) and the partner (which verifies and opens), so
the format is defined once. Format 1 (``security.crypto.hpke_seal``: one HPKE base-mode
encryption per value) only encrypted: anyone holding the partner's public key, which is
public by nature, could replace a value, forge or replay an answer, or put a plaintext where
a sealed value was. Format 2 adds integrity and costs one key encapsulation per answer:

**Context.** The gateway draws a 32-byte secret and HPKE-encrypts it once to the partner's key
(RFC 9180 base mode, the partner's KEM, HKDF-SHA256, AES-256-GCM) with
``info = "medfed-sealed/2 context" || SHA-256(canonical [kid, requestId])``. ``cryptography``
offers HPKE only as single-shot encryption (no context, no export), so the context the RFC
would keep is derived from that secret the way the RFC derives its own:
``key || base_nonce = HKDF-SHA256(secret, salt = "medfed-sealed/2", info = the same info, 44)``.
Value number ``i`` (0, 1, ... in the order the gateway walks the answer) is
``AES-256-GCM(key, base_nonce XOR i, plaintext = the value's exact JSON,
aad = "medfed-sealed/2 value" || canonical [i, path])`` and is written as
``medfed-sealed:v2:<kid>:<i>:<base64url(ciphertext)>``.

**Signature.** ``extensions.sealing`` is ``{format, requestId, clientRequestId, kid, suite,
enc, sealed, paths, signer, signature}``. The signature is made by the gateway's sealing key
(``keys/sealing.pub`` publishes it; Ed25519, see ``security.crypto.sealing_key``) over
``"medfed-sealed/2 signature\\n" || SHA-256(canonical {data, errors, sealing without its
signature})``. So the server's request id, the client's own id, the kid, the encapsulation,
the sealed paths and the whole answer (clear fields included) are covered: a substituted,
forged, replayed or re-pointed answer, or a plaintext put where a sealed value belongs, fails
verification against the pinned key.

*Canonical* JSON is UTF-8 with keys sorted, no whitespace, and numbers as orjson writes them
(shortest round trip); the partner re-serialises what it parsed, so both sides agree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security.crypto.hpke_seal import (
    KID_PATTERN,
    Path,
    PrivateKey,
    PublicKey,
    SealingError,
    dotted,
    suite,
    suite_name,
)

FORMAT = "medfed-sealed/2"
PREFIX = "medfed-sealed:v2:"
_SECRET_BYTES = 32
_NONCE_BYTES = 12
_CONTEXT_LABEL = b"medfed-sealed/2 context"
_VALUE_LABEL = b"medfed-sealed/2 value"
SIGNATURE_LABEL = b"medfed-sealed/2 signature\n"


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise SealingError(f"{what} is missing")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealingError(f"{what} is not valid base64url") from None


def _info(kid: str, request_id: str) -> bytes:
    return _CONTEXT_LABEL + hashlib.sha256(canonical([kid, request_id])).digest()


class _Context:
    """The per-answer AEAD context: a key, a base nonce and the RFC 9180 nonce schedule."""

    def __init__(self, secret: bytes, info: bytes) -> None:
        okm = HKDF(hashes.SHA256(), 32 + _NONCE_BYTES, FORMAT.encode(), info).derive(secret)
        self._aead = AESGCM(okm[:32])
        self._base = int.from_bytes(okm[32:], "big")

    def _nonce(self, seq: int) -> bytes:
        return (self._base ^ seq).to_bytes(_NONCE_BYTES, "big")

    @staticmethod
    def _aad(seq: int, path: Path) -> bytes:
        return _VALUE_LABEL + canonical([seq, list(path)])

    def seal(self, seq: int, path: Path, value: Any) -> bytes:
        # The value's own JSON, key order kept, so opening gives back exactly the answer.
        return self._aead.encrypt(self._nonce(seq), orjson.dumps(value), self._aad(seq, path))

    def open(self, seq: int, path: Path, sealed: bytes) -> Any:
        try:
            plain = self._aead.decrypt(self._nonce(seq), sealed, self._aad(seq, path))
        except InvalidTag:
            raise SealingError(
                f"{dotted(path)}: sealed value does not open here (moved, or tampered)"
            ) from None
        return orjson.loads(plain)


class Sealer:
    """The gateway's side for one answer: ``seal(path, value)`` for each value in walk order,
    then ``extension()`` for ``extensions.sealing`` (before :func:`sign`)."""

    def __init__(
        self,
        kem: str,
        public_key: PublicKey,
        kid: str,
        request_id: str,
        client_request_id: str | None,
    ) -> None:
        self.kid, self.kem = kid, kem
        self.request_id, self.client_request_id = request_id, client_request_id
        self.paths: list[list[str | int]] = []
        self._secret = os.urandom(_SECRET_BYTES)
        info = _info(kid, request_id)
        self._enc = suite(kem).encrypt(self._secret, public_key, info=info)  # one encapsulation
        self._context = _Context(self._secret, info)

    def seal(self, path: Path, value: Any) -> str:
        seq = len(self.paths)
        self.paths.append(list(path))
        body = _b64(self._context.seal(seq, path, value))
        return f"{PREFIX}{self.kid}:{seq}:{body}"

    def extension(self, signer_name: str) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "requestId": self.request_id,
            "clientRequestId": self.client_request_id,
            "kid": self.kid,
            "suite": suite_name(self.kem),
            "enc": _b64(self._enc),
            "sealed": len(self.paths),
            "paths": self.paths,
            "signer": signer_name,
        }


def signed_digest(response: dict[str, Any]) -> bytes:
    """What the signature covers: the answer's data and errors and its sealing extension
    without the signature (other extensions, such as a router's, are not covered)."""
    sealing = dict((response.get("extensions") or {}).get("sealing") or {})
    sealing.pop("signature", None)
    statement = {"data": response.get("data"), "errors": response.get("errors"), "sealing": sealing}
    return SIGNATURE_LABEL + hashlib.sha256(canonical(statement)).digest()


def sign(response: dict[str, Any], sign_message: Callable[[bytes], bytes]) -> None:
    """Add the signature to a response dict whose ``extensions.sealing`` is in place."""
    signature = sign_message(signed_digest(response))
    response["extensions"]["sealing"]["signature"] = _b64(signature)


def is_envelope(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


@dataclass(frozen=True)
class Expected:
    """What the partner requires of an answer beyond a valid signature."""

    kid: str
    kem: str
    request_id: str | None = None  # the server's id, when the partner knows it
    client_request_id: str | None = None  # the id the partner offered in X-Request-Id


def verify_and_open(
    response: dict[str, Any],
    private_key: PrivateKey,
    verify_signature: Callable[[bytes, bytes], bool],
    expected: Expected,
) -> dict[str, Any]:
    """Check a format-2 answer against the pinned gateway key and open it; returns the data
    with every sealed value opened. Raises :class:`SealingError` on any mismatch."""
    sealing = (response.get("extensions") or {}).get("sealing") or {}
    signature = _unb64(sealing.get("signature"), "the sealing signature")
    if not verify_signature(signed_digest(response), signature):
        raise SealingError(
            "the answer's signature does not verify against the pinned gateway key: it was "
            "altered, forged, or signed by another gateway"
        )
    kid, request_id = sealing.get("kid"), sealing.get("requestId")
    if kid != expected.kid:
        raise SealingError(f"the answer is sealed to key {kid!r}, not {expected.kid!r}")
    if sealing.get("suite") != suite_name(expected.kem):
        raise SealingError(f"the answer's suite {sealing.get('suite')!r} is not this key's")
    if not isinstance(request_id, str) or not request_id:
        raise SealingError("the answer names no request id")
    if expected.request_id is not None and request_id != expected.request_id:
        raise SealingError(
            f"the answer is for request {request_id!r}, not {expected.request_id!r} (replayed?)"
        )
    if (
        expected.client_request_id is not None
        and sealing.get("clientRequestId") != expected.client_request_id
    ):
        raise SealingError(
            f"the answer is for client request {sealing.get('clientRequestId')!r}, not "
            f"{expected.client_request_id!r} (replayed?)"
        )
    paths = sealing.get("paths")
    if not isinstance(paths, list) or sealing.get("sealed") != len(paths):
        raise SealingError("the answer's sealed count does not match its sealed paths")
    info = _info(kid, request_id)
    try:
        secret = suite(expected.kem).decrypt(
            _unb64(sealing.get("enc"), "the encapsulation"), private_key, info=info
        )
    except (InvalidTag, ValueError):
        raise SealingError("the answer's key encapsulation does not open with this key") from None
    context = _Context(secret, info)
    data = response.get("data")
    found = dict(_envelopes(data, []))
    try:
        listed = {tuple(p): seq for seq, p in enumerate(paths)}
    except TypeError:
        raise SealingError("the answer's sealed paths are malformed") from None
    if len(listed) != len(paths):
        raise SealingError("the answer lists a sealed path twice")
    for path in listed:
        if path not in found:
            raise SealingError(f"{dotted(path)}: a plaintext where a sealed value belongs")
    for path in found:
        if path not in listed:
            raise SealingError(f"{dotted(path)}: a sealed value the gateway did not list")
    opened: dict[tuple[str | int, ...], Any] = {}
    for path, envelope in found.items():
        env_kid, seq, body = _parse(envelope, path)
        if env_kid != kid or seq != listed[path]:
            raise SealingError(f"{dotted(path)}: sealed value out of place")
        opened[path] = context.open(seq, path, _unb64(body, f"{dotted(path)}"))
    return _replace(data, opened, [])


def _parse(envelope: str, path: tuple[str | int, ...]) -> tuple[str, int, str]:
    kid, _, rest = envelope[len(PREFIX) :].partition(":")
    seq, _, body = rest.partition(":")
    if not KID_PATTERN.match(kid) or not seq.isdigit() or not body:
        raise SealingError(f"{dotted(path)}: malformed sealed value")
    return kid, int(seq), body


def _envelopes(value: Any, path: list[str | int]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if is_envelope(value):
        yield tuple(path), value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _envelopes(v, [*path, k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _envelopes(v, [*path, i])


def _replace(value: Any, opened: dict[tuple[str | int, ...], Any], path: list[str | int]) -> Any:
    key = tuple(path)
    if key in opened:
        return opened[key]
    if isinstance(value, dict):
        return {k: _replace(v, opened, [*path, k]) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, opened, [*path, i]) for i, v in enumerate(value)]
    return value
