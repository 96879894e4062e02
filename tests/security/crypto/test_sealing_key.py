"""The gateway's sealing key: Ed25519 signs answers directly; under the national profile an
SM2 key delegates, once a day, to an Ed25519 key that signs them (gmalg's SM2 is too slow and
not constant-time for a signature per answer)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from security.crypto import sealed_answer
from security.crypto.hpke_seal import SealingError
from security.crypto.sealing_key import GatewayKey, load_sealing_signer


def answer(signer) -> dict:
    public = x25519.X25519PrivateKey.generate().public_key()
    sealer = sealed_answer.Sealer("X25519", public, "kid-1", "r" * 32, "mine")
    data = {"person": {"name": sealer.seal(["person", "name"], "王秀英"), "personId": "p"}}
    session = signer.session()
    extension = sealer.extension(session.name)
    if session.delegation is not None:
        extension["delegation"] = session.delegation
    response = {"data": data, "extensions": {"sealing": extension}}
    sealed_answer.sign(response, session.sign)
    return response


def verifies(key: GatewayKey, response: dict, now: float | None = None) -> bool:
    sealing = response["extensions"]["sealing"]
    signature = sealed_answer._unb64(sealing["signature"], "signature")
    return key.checker(sealing, now)(sealed_answer.signed_digest(response), signature)


@pytest.mark.parametrize("profile", ["standard", "national"])
def test_answers_verify_against_the_published_key_only(tmp_path, profile):
    signer = load_sealing_signer(tmp_path, profile)
    published = GatewayKey.load(tmp_path / "sealing.pub")
    response = answer(signer)
    assert verifies(published, response)
    assert (tmp_path / ("sealing.sm2" if profile == "national" else "sealing.pem")).exists()
    other = GatewayKey.load(_other(tmp_path, profile))
    if profile == "standard":
        assert not verifies(other, response)
    else:
        with pytest.raises(SealingError, match="not signed by the pinned key"):
            verifies(other, response)
    # Reloading gives the same key: the first process to create it wins, the rest read it.
    assert verifies(
        GatewayKey.load(tmp_path / "sealing.pub"), answer(load_sealing_signer(tmp_path, profile))
    )


def _other(tmp_path, profile):
    other = tmp_path / "other"
    other.mkdir()
    load_sealing_signer(other, profile)
    return other / "sealing.pub"


def test_a_national_delegation_that_is_altered_or_expired_is_refused(tmp_path):
    signer = load_sealing_signer(tmp_path, "national")
    published = GatewayKey.load(tmp_path / "sealing.pub")
    response = answer(signer)
    delegation = response["extensions"]["sealing"]["delegation"]
    assert verifies(published, response, now=delegation["notAfter"])  # the boundary holds
    with pytest.raises(SealingError, match="expired"):
        verifies(published, response, now=delegation["notAfter"] + 1)
    stretched = {**delegation, "notAfter": delegation["notAfter"] + 86400}
    response["extensions"]["sealing"]["delegation"] = stretched
    with pytest.raises(SealingError, match="not signed by the pinned key"):
        verifies(published, response)
    del response["extensions"]["sealing"]["delegation"]
    with pytest.raises(SealingError, match="no delegation"):
        verifies(published, response)


def test_one_sm2_signature_serves_many_answers(tmp_path):
    signer = load_sealing_signer(tmp_path, "national")
    first = signer.session()
    assert all(signer.session() is first for _ in range(100))  # no SM2 signature per answer
