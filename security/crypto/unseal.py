"""The partner's side: verify a sealed medfed answer against the pinned gateway key, open it.

    from security.crypto.unseal import GatewayKey, load_private_key, unseal_response
    key = load_private_key("h330-x25519-1a2b3c4d.key")
    gateway = GatewayKey.load("sealing.pub")        # the gateway's published sealing key
    answer = unseal_response(response.content, key, gateway_key=gateway,
                             client_request_id=my_id)   # the X-Request-Id you sent

A format-2 answer (``extensions.sealing.format == "medfed-sealed/2"``) opens only if its
signature verifies under ``gateway_key``, it is sealed to this key, every path the gateway
listed holds a sealed value and no other does, and (when given) its request ids are the
expected ones; anything else raises :class:`SealingError`. A format-1 answer has no integrity
at all (anyone with the partner's public key can forge one), so it opens only with
``allow_v1=True`` and then with a :class:`UnauthenticatedAnswerWarning`; a pinned partner that
does not allow it cannot be downgraded.
"""

from __future__ import annotations

import base64
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from security.crypto import hpke_seal, sealed_answer
from security.crypto.hpke_seal import PrivateKey, SealingError
from security.crypto.sealing_key import GatewayKey

__all__ = [
    "GatewayKey",
    "PartnerPrivateKey",
    "SealingError",
    "UnauthenticatedAnswerWarning",
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


class UnauthenticatedAnswerWarning(UserWarning):
    """A format-1 sealed answer was opened: it is secret but not authenticated."""


def unseal_response(
    response_json: dict[str, Any] | str | bytes,
    private_key: PartnerPrivateKey,
    *,
    gateway_key: GatewayKey | None = None,
    request_id: str | None = None,
    client_request_id: str | None = None,
    allow_v1: bool = False,
) -> dict[str, Any]:
    """The response with every sealed value opened and ``extensions.sealing`` removed."""
    response = (
        orjson.loads(response_json)
        if isinstance(response_json, str | bytes)
        else orjson.loads(orjson.dumps(response_json))
    )  # a copy: the input stays intact
    if not isinstance(response, dict):
        raise SealingError("not a medfed answer")
    extensions = response.get("extensions") or {}
    sealing = extensions.get("sealing")
    if not isinstance(sealing, dict):
        raise SealingError("no extensions.sealing: not a sealed medfed answer")
    if sealing.get("format") == sealed_answer.FORMAT:
        if gateway_key is None:
            raise SealingError(
                "pin the gateway's sealing key (its keys/sealing.pub) to verify this answer"
            )
        expected = sealed_answer.Expected(
            private_key.kid, private_key.kem, request_id, client_request_id
        )
        data = sealed_answer.verify_and_open(
            response, private_key.key, gateway_key.checker(sealing), expected
        )
    elif "format" in sealing:
        raise SealingError(f"unknown sealed-answer format {sealing.get('format')!r}")
    else:
        if not allow_v1:
            raise SealingError(
                "a format-1 sealed answer carries no signature, so it may be forged or altered; "
                "refused (pass allow_v1=True, or --allow-v1, to open it anyway)"
            )
        data = _open_v1(response, sealing, private_key, request_id)
    extensions.pop("sealing")
    if "extensions" in response and not extensions:
        del response["extensions"]
    response["data"] = data
    return response


def _open_v1(
    response: dict[str, Any],
    sealing: dict[str, Any],
    private_key: PartnerPrivateKey,
    request_id: str | None,
) -> Any:
    warnings.warn(
        "opened a format-1 sealed answer: it is not authenticated (anyone holding your public "
        "key could have forged or altered it)",
        UnauthenticatedAnswerWarning,
        stacklevel=3,
    )
    if request_id is None:
        request_id = sealing.get("requestId")
    if not isinstance(request_id, str):
        raise SealingError("no request id: not a sealed medfed response")
    if sealing.get("kid", private_key.kid) != private_key.kid:
        raise SealingError(
            f"response is sealed to key {sealing.get('kid')!r}, not {private_key.kid!r}"
        )
    counter = [0]
    data = _open(response.get("data"), private_key, request_id, [], counter)
    if sealing.get("sealed") != counter[0]:
        raise SealingError(
            f"the answer claims {sealing.get('sealed')!r} sealed values but holds {counter[0]}"
        )
    return data


def _open(
    value: Any, key: PartnerPrivateKey, request_id: str, path: list[str | int], counter: list[int]
) -> Any:
    if hpke_seal.is_envelope(value):
        counter[0] += 1
        return hpke_seal.open_envelope(value, key.kem, key.key, key.kid, request_id, path)
    if isinstance(value, dict):
        return {k: _open(v, key, request_id, [*path, k], counter) for k, v in value.items()}
    if isinstance(value, list):
        return [_open(v, key, request_id, [*path, i], counter) for i, v in enumerate(value)]
    return value
