"""Identity providers trusted by their OpenID Connect discovery document and JWKS: real HTTP
on loopback, keys that rotate without a restart, a cache that is bounded both ways."""

from __future__ import annotations

import httpx
import pytest

from gateway.auth import AuthMiddleware
from security.identity import AuthenticationError, IssuerConfigError, IssuerRegistry
from security.identity.jwks import KeysUnavailable
from security.identity.verify import verify_token
from tests.support.jwks_server import Provider

SCOPE = (
    '[issuers.scope]\nroles = ["patient", "auditor"]\norgs = ["*"]\nperson = true\n'
    'purposes = ["PATIENT_ACCESS", "AUDIT"]\n'
)
PATIENT = {
    "aud": "medfed",
    "sub": "acct-1",
    "role": "patient",
    "org": "330106",
    "purposes": ["PATIENT_ACCESS"],
    "person": "0123456789abcdef0123456789abcdef",
    "mdtrt_cert_type": "01",
    "acr": "real_person",
}


@pytest.fixture
def provider():
    found = Provider()
    yield found
    found.close()


def registry(provider: Provider) -> IssuerRegistry:
    return IssuerRegistry.from_toml(provider.issuers_entry(SCOPE))


def test_a_providers_token_verifies_by_its_published_key(provider):
    provider.add_key("k1")
    principal = verify_token(provider.token("k1", PATIENT), registry(provider), audience="medfed")
    assert principal.role.value == "patient" and principal.issuer == provider.iss
    assert principal.person_ref == PATIENT["person"]
    # Ed25519 keys are taken too.
    provider.add_key("k2", "EdDSA")
    assert verify_token(provider.token("k2", PATIENT), registry(provider), audience="medfed")


def test_keys_rotate_without_a_restart_and_the_set_is_cached(provider):
    provider.add_key("old")
    trusted = registry(provider)
    trusted.issuer(provider.iss).jwks.min_refresh = 0
    verify_token(provider.token("old", PATIENT), trusted, audience="medfed")
    verify_token(provider.token("old", PATIENT), trusted, audience="medfed")
    assert provider.hits == {"discovery": 1, "jwks": 1}  # the second read came from the cache
    provider.add_key("new")
    verify_token(provider.token("new", PATIENT), trusted, audience="medfed")
    assert provider.hits["jwks"] == 2  # an unknown kid refreshed the set once
    # A withdrawn key stops working once the cache has lived its lifespan.
    del provider.keys["old"]
    trusted.issuer(provider.iss).jwks.lifespan = 0
    with pytest.raises(AuthenticationError, match="has no key 'old'"):
        verify_token(
            provider.token("new", PATIENT) and _stale(provider), trusted, audience="medfed"
        )


def _stale(provider: Provider) -> str:
    # A token under the withdrawn key, signed before it was withdrawn.
    provider.add_key("old")
    token = provider.token("old", PATIENT)
    del provider.keys["old"]
    return token


def test_made_up_key_ids_do_not_hammer_the_provider(provider):
    provider.add_key("k1")
    trusted = registry(provider)
    verify_token(provider.token("k1", PATIENT), trusted, audience="medfed")
    for n in range(5):
        provider.add_key(f"x{n}")
        with pytest.raises(AuthenticationError, match="has no key"):
            verify_token(provider.token(f"x{n}", PATIENT), trusted, audience="medfed")
    assert provider.hits["jwks"] == 1  # no refresh within min_refresh, not five
    # Positive control: after min_refresh an unknown kid does refresh, and is found.
    trusted.issuer(provider.iss).jwks.min_refresh = 0
    assert verify_token(provider.token("x4", PATIENT), trusted, audience="medfed")
    assert provider.hits["jwks"] == 2


def test_only_ed25519_and_p256_keys_are_taken(provider):
    provider.add_key("rsa", "RS256")
    provider.add_key("ec")
    trusted = registry(provider)
    with pytest.raises(AuthenticationError, match="algorithm 'RS256' is not accepted"):
        verify_token(provider.token("rsa", PATIENT), trusted, audience="medfed")
    # An ES256 header naming the RSA key finds no key of that id in the usable set.
    with pytest.raises(AuthenticationError, match="has no key 'rsa'"):
        verify_token(
            provider.token("ec", PATIENT) and _es_header_on(provider), trusted, audience="medfed"
        )
    assert verify_token(provider.token("ec", PATIENT), trusted, audience="medfed")


def _es_header_on(provider: Provider) -> str:
    import jwt

    return jwt.encode(
        {"iss": provider.iss, **PATIENT, "iat": 1, "exp": 2},
        provider.keys["ec"],
        algorithm="ES256",
        headers={"kid": "rsa"},
    )


def test_a_discovery_document_for_another_issuer_is_refused(provider):
    provider.add_key("k1")
    provider.issuer_override = "https://someone-else.example"
    with pytest.raises(KeysUnavailable, match="for another issuer"):
        verify_token(provider.token("k1", PATIENT), registry(provider), audience="medfed")


def test_the_scope_still_applies(provider):
    provider.add_key("k1")
    with pytest.raises(AuthenticationError, match="outside the scope"):
        verify_token(
            provider.token("k1", {**PATIENT, "role": "clinician", "purposes": ["TREATMENT"]}),
            registry(provider),
            audience="medfed",
        )


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('discovery = "http://idp.example/.well-known/openid-configuration"', "https://"),
        ('discovery = ""', "non-empty"),
        (
            'discovery = "https://idp.example/x"\n[[issuers.keys]]\nkid = "a"\nalg = "ES256"\n'
            'public_key = "x"',
            "not both",
        ),
    ],
)
def test_discovery_settings_are_checked(entry, problem):
    text = f'[[issuers]]\niss = "https://idp.example"\naudiences = ["medfed"]\n{entry}\n\n{SCOPE}'
    with pytest.raises(IssuerConfigError, match=problem):
        IssuerRegistry.from_toml(text)
    # Positive control: an https discovery URL alone is a valid entry.
    ok = '[[issuers]]\niss = "https://idp.example"\naudiences = ["medfed"]\n'
    assert IssuerRegistry.from_toml(
        ok + f'discovery = "https://idp.example/.well-known/openid-configuration"\n\n{SCOPE}'
    ).issuer("https://idp.example")


async def test_the_gateway_answers_503_while_the_provider_is_down(provider):
    provider.add_key("k1")
    trusted = registry(provider)

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"in"})

    middleware = AuthMiddleware(app, lambda: trusted)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        token = provider.token("k1", PATIENT)
        provider.down = True
        down = await client.post("/graphql", headers={"Authorization": f"Bearer {token}"})
        assert down.status_code == 503
        assert down.json()["errors"][0]["extensions"]["code"] == "IDENTITY_UNAVAILABLE"
        provider.down = False
        trusted.issuer(provider.iss).jwks.min_refresh = 0
        up = await client.post("/graphql", headers={"Authorization": f"Bearer {token}"})
        assert up.status_code == 200 and up.text == "in"
