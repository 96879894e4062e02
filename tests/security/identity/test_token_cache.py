"""Verified tokens remembered (security.identity.token_cache): a repeated token skips the
signature check, but an expired token, a withdrawn or rotated key, a changed issuer and a
changed byte are refused even while the token is remembered."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from security.identity import DEMO_KID, AuthenticationError, IssuerRegistry, RegistryFile
from security.identity.token_cache import VerifiedTokens
from tests.support.identity import AUDIENCE, ES_ISSUER, ES_KID, World, claims, make_world
from tests.support.identity import public_pem as pem_of
from tests.support.jwks_server import Provider


@pytest.fixture
def world(data_dir) -> World:
    return make_world(data_dir)


def _tokens(**kwargs) -> VerifiedTokens:
    return VerifiedTokens(audience=AUDIENCE, **kwargs)


def test_a_repeated_token_is_verified_once_and_answers_the_same_principal(world):
    tokens, registry = _tokens(), IssuerRegistry.load(world.issuers_file)
    token = world.demo_token()
    first = tokens.verify(token, registry)
    assert (tokens.hits, tokens.misses) == (0, 1)
    again = tokens.verify(token, registry)
    assert again is first and (tokens.hits, tokens.misses) == (1, 1)
    other = world.demo_token(sub="dr-li")  # another token: verified on its own
    assert tokens.verify(other, registry).sub == "dr-li" and tokens.misses == 2


def test_a_remembered_token_is_refused_once_it_expires(world):
    tokens, registry = _tokens(leeway_seconds=60), IssuerRegistry.load(world.issuers_file)
    now = int(time.time())
    token = world.demo_token(iat=now, exp=now + 600)
    tokens.verify(token, registry, now=now)
    # The boundary is verify_token's: exp plus the leeway still passes, from the cache ...
    assert tokens.verify(token, registry, now=now + 600 + 59).sub == "dr-wang"
    assert tokens.hits == 1
    # ... one second later it is refused, remembered or not, and stays refused.
    for _ in range(2):
        with pytest.raises(AuthenticationError, match="token expired at"):
            tokens.verify(token, registry, now=now + 600 + 60)
    assert tokens.hits == 1


def test_a_withdrawn_key_is_refused_although_its_token_was_remembered(world):
    tokens, registry = _tokens(), RegistryFile(world.issuers_file, min_interval=0)
    token = world.es_token()
    assert tokens.verify(token, registry()).issuer == ES_ISSUER
    assert tokens.verify(token, registry()).issuer == ES_ISSUER and tokens.hits == 1
    # The ES256 issuer's key is withdrawn from the issuers file (the file is re-read).
    text = world.issuers_file.read_text(encoding="utf-8")
    world.issuers_file.write_text(
        text.replace(f'kid = "{ES_KID}"', 'kid = "es-2"'), encoding="utf-8"
    )
    with pytest.raises(AuthenticationError, match=f"has no key '{ES_KID}'"):
        tokens.verify(token, registry())
    # The control: the demo issuer's token, remembered before, re-verifies and passes.
    assert tokens.verify(world.demo_token(), registry()).sub == "dr-wang"


def test_a_rotated_key_under_the_same_kid_refuses_tokens_of_the_old_one(world):
    tokens, registry = _tokens(), RegistryFile(world.issuers_file, min_interval=0)
    old = world.demo_token()
    tokens.verify(old, registry())
    tokens.verify(old, registry())
    assert tokens.hits == 1
    new_key = ed25519.Ed25519PrivateKey.generate()
    text = world.issuers_file.read_text(encoding="utf-8")
    world.issuers_file.write_text(
        text.replace(world.demo.public_pem().strip(), pem_of(new_key).strip()), encoding="utf-8"
    )
    with pytest.raises(AuthenticationError, match="signature does not verify"):
        tokens.verify(old, registry())
    new = jwt.encode(claims(), new_key, algorithm="EdDSA", headers={"kid": DEMO_KID})
    assert tokens.verify(new, registry()).sub == "dr-wang"


def test_a_narrowed_issuer_scope_applies_to_remembered_tokens(world):
    tokens, registry = _tokens(), RegistryFile(world.issuers_file, min_interval=0)
    token = world.es_token(role="pharmacist", org="P33010600101")
    tokens.verify(token, registry())
    text = world.issuers_file.read_text(encoding="utf-8")
    world.issuers_file.write_text(
        text.replace('roles = ["clinician", "pharmacist"]', 'roles = ["clinician"]'),
        encoding="utf-8",
    )
    with pytest.raises(AuthenticationError, match="pharmacist"):
        tokens.verify(token, registry())
    assert tokens.verify(world.es_token(), registry()).role.value == "clinician"


def test_a_changed_byte_is_another_token(world):
    tokens, registry = _tokens(), IssuerRegistry.load(world.issuers_file)
    token = world.demo_token()
    tokens.verify(token, registry)
    head, body, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(AuthenticationError, match="signature does not verify"):
        tokens.verify(f"{head}.{body}.{flipped}", registry)
    forged = jwt.encode(claims(role="admin"), world.demo.private_key, algorithm="EdDSA")
    with pytest.raises(AuthenticationError):
        tokens.verify(forged, registry)  # no kid: refused before any cache could answer


def test_the_cache_is_bounded(world):
    tokens, registry = _tokens(entries=2), IssuerRegistry.load(world.issuers_file)
    first, second, third = (world.demo_token(sub=f"dr-{n}") for n in "abc")
    for token in (first, second, third):
        tokens.verify(token, registry)
    assert tokens.misses == 3
    tokens.verify(third, registry)
    assert tokens.hits == 1
    tokens.verify(first, registry)  # dropped to make room: verified again
    assert tokens.misses == 4


def test_a_providers_key_withdrawn_from_its_key_set_is_refused(world):
    provider = Provider()
    try:
        provider.add_key("k1")
        scope = (
            '[issuers.scope]\nroles = ["clinician"]\norgs = ["*"]\nperson = false\n'
            'purposes = ["TREATMENT"]\n'
        )
        registry = IssuerRegistry.from_toml(provider.issuers_entry(scope))
        jwks = registry.issuer(provider.iss).jwks
        token = provider.token("k1", {k: v for k, v in claims().items() if k != "iss"})
        tokens = _tokens()
        tokens.verify(token, registry)
        tokens.verify(token, registry)
        assert tokens.hits == 1
        # The provider withdraws the key; once its set is due to be read again (the cache's
        # lifespan), the remembered token goes through the full path and is refused.
        del provider.keys["k1"]
        provider.add_key("k2")
        jwks.lifespan = 0
        with pytest.raises(AuthenticationError, match="has no key 'k1'"):
            tokens.verify(token, registry)
    finally:
        provider.close()
