"""The partner's side: open a sealed medfed response with the partner's private key.

    from security.crypto.unseal import load_private_key, unseal_response
    key = load_private_key("h330-x25519-1a2b3c4d.key")
    answer = unseal_response(response.json(), key)   # the exact unsealed answer

Every ``medfed-sealed:v1:`` string in ``data`` is opened with ``info`` bound to its own
response path and the response's request id; anything that does not open (another path,
another response, another key, a changed byte) raises :class:`SealingError` naming the path.
"""

from __future__ import annotations

import base64
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from security.crypto import hpke_seal
from security.crypto.hpke_seal import PrivateKey, SealingError

__all__ = [
    "PartnerPrivateKey",
    "SealingError",
    "load_private_key",
    "private_key_text",
    "unseal_response",
]


@dataclass(frozen=True)
class PartnerPrivateKey:
    kid: str
    kem: str
    key: PrivateKey


def private_key_text(kid: str, kem: str, org: str, private_raw: bytes) -> bytes:
    return (
        f"# medfed partner private key: keep it secret, never send it to the gateway\n"
        f'kid = "{kid}"\nkem = "{kem}"\norg = "{org}"\n'
        f'private = "{base64.b64encode(private_raw).decode()}"\n'
    ).encode()


def load_private_key(path: str | Path) -> PartnerPrivateKey:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SealingError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise SealingError(f"{path}: not a medfed partner private key file") from None
    kid, kem, private = raw.get("kid"), raw.get("kem"), raw.get("private")
    if not all(isinstance(v, str) for v in (kid, kem, private)):
        raise SealingError(f"{path}: needs kid, kem and private")
    try:
        key = hpke_seal.private_from_bytes(kem, hpke_seal.b64decode(private, "private key"))
    except SealingError as exc:
        raise SealingError(f"{path}: key {kid!r}: {exc}") from None
    return PartnerPrivateKey(kid, kem, key)


def unseal_response(
    response_json: dict[str, Any] | str | bytes,
    private_key: PartnerPrivateKey,
    *,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The response with every sealed value opened and ``extensions.sealing`` removed."""
    response = (
        json.loads(response_json)
        if isinstance(response_json, str | bytes)
        else json.loads(json.dumps(response_json))
    )  # a copy: the input stays intact
    extensions = response.get("extensions") or {}
    sealing = extensions.pop("sealing", None) or {}
    if request_id is None:
        request_id = sealing.get("requestId")
    if not isinstance(request_id, str):
        raise SealingError("no request id: not a sealed medfed response")
    if sealing.get("kid", private_key.kid) != private_key.kid:
        raise SealingError(
            f"response is sealed to key {sealing.get('kid')!r}, not {private_key.kid!r}"
        )
    if "extensions" in response and not extensions:
        del response["extensions"]
    response["data"] = _open(response.get("data"), private_key, request_id, [])
    return response


def _open(value: Any, key: PartnerPrivateKey, request_id: str, path: list[str | int]) -> Any:
    if hpke_seal.is_envelope(value):
        return hpke_seal.open_envelope(value, key.kem, key.key, key.kid, request_id, path)
    if isinstance(value, dict):
        return {k: _open(v, key, request_id, [*path, k]) for k, v in value.items()}
    if isinstance(value, list):
        return [_open(v, key, request_id, [*path, i]) for i, v in enumerate(value)]
    return value
