"""Token verification through a real Starlette app behind the auth middleware: every way a
token can be wrong is a 401 (or 400/403 for the purpose of use) and the app is never run."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway.auth import AuthMiddleware, auth_options
from gateway.config import load_settings
from security.identity import (
    DEMO_ISSUER,
    DEMO_KID,
    AuthenticationError,
    DemoIssuerError,
    IssuerConfigError,
    IssuerRegistry,
    Purpose,
    RegistryFile,
    Role,
    verify_token,
)
from tests.support.identity import (
    AUDIENCE,
    CLINIC,
    DROP,
    ES_ISSUER,
    ES_KID,
    PERSON,
    World,
    claims,
    hs256_with,
    make_world,
    unsigned,
)


@pytest.fixture
def world(data_dir) -> World:
    return make_world(data_dir)


def _now() -> int:
    return int(time.time())


def _other_ed25519(world: World, **overrides) -> str:
    return jwt.encode(
        claims(**overrides),
        ed25519.Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": DEMO_KID},
    )


def _rsa(world: World) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims(), key, algorithm="RS256", headers={"kid": DEMO_KID})


def _es384(world: World) -> str:
    key = ec.generate_private_key(ec.SECP384R1())
    return jwt.encode(claims(), key, algorithm="ES384", headers={"kid": DEMO_KID})


# Each case: a token built from the world, and a fragment of the one-line reason.
BAD_TOKENS = {
    "malformed: one part": (lambda w: "abc", "not a JWT"),
    "malformed: junk": (lambda w: "not.a.jwt!!", "not a JWT"),
    "malformed: header not JSON": (lambda w: "bm90LWpzb24.e30.c2ln", "header is malformed"),
    "forged: signed by another Ed25519 key": (_other_ed25519, "signature does not verify"),
    "forged: payload swapped after signing": (
        lambda w: ".".join(
            [
                w.demo_token().split(".")[0],
                w.demo_token(role="admin").split(".")[1],
                w.demo_token().split(".")[2],
            ]
        ),
        "signature does not verify",
    ),
    "alg none": (
        lambda w: unsigned({"alg": "none", "typ": "JWT", "kid": DEMO_KID}, claims()),
        "algorithm 'none' is not accepted",
    ),
    "alg None": (lambda w: unsigned({"alg": "None", "kid": DEMO_KID}, claims()), "is not accepted"),
    "alg missing": (lambda w: unsigned({"kid": DEMO_KID}, claims(), b"x"), "is not accepted"),
    "HS256 keyed with the issuer's public key PEM": (
        lambda w: hs256_with(w.demo_public_pem(), {"alg": "HS256", "kid": DEMO_KID}, claims()),
        "algorithm 'HS256' is not accepted",
    ),
    "HS256 keyed with the issuer's raw public key": (
        lambda w: hs256_with(
            w.demo.private_key.public_key().public_bytes_raw(),
            {"alg": "HS256", "kid": DEMO_KID},
            claims(),
        ),
        "algorithm 'HS256' is not accepted",
    ),
    "RS256": (_rsa, "algorithm 'RS256' is not accepted"),
    "ES384": (_es384, "algorithm 'ES384' is not accepted"),
    "ES256 against the Ed25519 key": (
        lambda w: jwt.encode(claims(), w.es_key, algorithm="ES256", headers={"kid": DEMO_KID}),
        "does not match key 'demo-1' (EdDSA)",
    ),
    "EdDSA against the ES256 key": (
        lambda w: jwt.encode(
            claims(iss=ES_ISSUER), w.demo.private_key, algorithm="EdDSA", headers={"kid": ES_KID}
        ),
        "does not match key 'es-1' (ES256)",
    ),
    "no kid": (lambda w: jwt.encode(claims(), w.demo.private_key, algorithm="EdDSA"), "no key id"),
    "unknown kid": (
        lambda w: jwt.encode(
            claims(), w.demo.private_key, algorithm="EdDSA", headers={"kid": "demo-2"}
        ),
        "has no key 'demo-2'",
    ),
    "unknown issuer": (
        lambda w: w.demo_token(iss="https://evil.example"),
        "issuer 'https://evil.example' is not trusted",
    ),
    "expired": (lambda w: w.demo_token(iat=_now() - 7200, exp=_now() - 3600), "token expired at"),
    "not yet valid beyond skew": (lambda w: w.demo_token(nbf=_now() + 300), "not valid before"),
    "issued in the future": (
        lambda w: w.demo_token(iat=_now() + 300, exp=_now() + 3900),
        "issued in the future",
    ),
    "lifetime too long": (
        lambda w: w.demo_token(exp=_now() + 13 * 3600),
        "lifetime 13h exceeds the maximum of 12h",
    ),
    "expires before issued": (
        lambda w: w.demo_token(iat=_now(), exp=_now() - 10),
        "expires before it was issued",
    ),
    "exp not a number": (lambda w: w.demo_token(exp="tomorrow"), "claim 'exp' must be a time"),
    "exp a boolean": (lambda w: w.demo_token(exp=True), "claim 'exp' must be a time"),
    "wrong audience": (lambda w: w.demo_token(aud="someone-else"), "not for audience 'medfed'"),
    "bad role": (lambda w: w.demo_token(role="superuser"), "'superuser' is not one of patient"),
    "role in capitals": (lambda w: w.demo_token(role="CLINICIAN"), "is not one of"),
    "purposes empty": (lambda w: w.demo_token(purposes=[]), "at least one purpose"),
    "purposes unknown": (
        lambda w: w.demo_token(purposes=["TREATMENT", "MARKETING"]),
        "'MARKETING' is not one of",
    ),
    "purposes a string": (lambda w: w.demo_token(purposes="TREATMENT"), "must be a list"),
    "purposes an object": (lambda w: w.demo_token(purposes={"TREATMENT": True}), "must be a list"),
    "org not a code": (
        lambda w: w.demo_token(org="Hangzhou Hospital"),
        "claim 'org' 'Hangzhou Hospital' is neither",
    ),
    "org one digit short": (lambda w: w.demo_token(org="H3301060000"), "claim 'org'"),
    "org region with 0 prefix": (lambda w: w.demo_token(org="030106"), "claim 'org'"),
    "patient without person": (
        lambda w: w.demo_token(role="patient", org="330106", purposes=["PATIENT_ACCESS"]),
        "'person' is required in a patient token",
    ),
    "patient with a malformed person": (
        lambda w: w.demo_token(
            role="patient", org="330106", purposes=["PATIENT_ACCESS"], person="330106199001011234"
        ),
        "'person' must be a personId pseudonym",
    ),
    "patient with another purpose": (
        lambda w: w.demo_token(
            role="patient", org="330106", person=PERSON, purposes=["PATIENT_ACCESS", "RESEARCH"]
        ),
        "may only be PATIENT_ACCESS",
    ),
    "non-patient with person": (
        lambda w: w.demo_token(person=PERSON),
        "'person' is only for patient tokens, not clinician",
    ),
    "subject is an ID number": (
        lambda w: w.demo_token(sub="33010619900101123X"),
        "looks like a citizen ID number",
    ),
    "too long": (lambda w: w.demo_token(sub="x" * 100, pad="y" * 9000), "longer than"),
}
for _claim in ("exp", "iat", "iss", "aud", "sub", "role", "org", "purposes"):
    BAD_TOKENS[f"missing {_claim}"] = (
        lambda w, c=_claim: w.demo_token(**{c: DROP}),
        "no issuer (iss)" if _claim == "iss" else f"lacks the '{_claim}' claim",
    )


def _assert_refused(world: World, response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert world.calls == [], "the application ran for a refused request"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == code
    assert "\n" not in error["message"]
    assert response.headers["cache-control"] == "no-store"
    return error


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_token_is_401_and_never_reaches_the_app(world, case):
    make, reason = BAD_TOKENS[case]
    token = make(world)
    response = await world.request(
        "POST",
        "/graphql",
        headers={"Authorization": f"Bearer {token}"},
        json={"query": "{ me { personId } }"},
    )
    error = _assert_refused(world, response, 401, "UNAUTHENTICATED")
    assert reason in error["message"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="medfed", error="invalid_token"')
    assert "error_description=" in challenge
    # The credential is never echoed, neither in the body nor in a header.
    signature = token.rsplit(".", 1)[-1] or token
    assert token not in response.text and signature not in challenge


async def test_no_authorization_header_is_401_with_a_bare_challenge(world):
    response = await world.request("POST", "/graphql", json={"query": "{ __typename }"})
    error = _assert_refused(world, response, 401, "UNAUTHENTICATED")
    assert "no Authorization header" in error["message"]
    assert response.headers["www-authenticate"] == 'Bearer realm="medfed"'


@pytest.mark.parametrize(
    "value, reason",
    [
        ("Basic ZHI6c2VjcmV0", "must use the Bearer scheme"),
        ("Token abc.def.ghi", "must use the Bearer scheme"),
        ("Bearer", "carries no token"),
        ("Bearer    ", "carries no token"),
    ],
)
async def test_authorization_that_is_not_a_bearer_token_is_401(world, value, reason):
    response = await world.request("GET", "/graphql", headers={"Authorization": value})
    error = _assert_refused(world, response, 401, "UNAUTHENTICATED")
    assert reason in error["message"]
    assert "ZHI6c2VjcmV0" not in response.text + response.headers["www-authenticate"]


async def test_two_authorization_headers_are_refused(world):
    token = world.demo_token()
    response = await world.request(
        "GET",
        "/graphql",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    _assert_refused(world, response, 401, "UNAUTHENTICATED")


async def test_valid_ed25519_token_reaches_the_app_with_principal_and_purpose(world):
    response = await world.request(
        "POST", "/graphql", headers={"Authorization": f"Bearer {world.demo_token()}"}, json={}
    )
    assert response.status_code == 200
    assert response.json() == {
        "sub": "dr-wang",
        "role": "clinician",
        "purpose": "TREATMENT",
        "person": None,
        "professional": None,
    }
    assert len(world.calls) == 1


async def test_valid_es256_token_from_a_key_file_reaches_the_app(world):
    response = await world.request(
        "POST", "/graphql", headers={"Authorization": f"bearer {world.es_token()}"}, json={}
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "clinician"


async def test_audience_may_be_a_list_containing_ours(world):
    token = world.demo_token(aud=["other-api", AUDIENCE])
    response = await world.request("GET", "/graphql", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_expiry_within_the_clock_skew_is_tolerated(world):
    token = world.demo_token(iat=_now() - 3600, exp=_now() - 30, nbf=_now() + 30)
    response = await world.request("GET", "/graphql", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_patient_token_carries_the_person_pseudonym(world):
    token = world.demo_token(
        role="patient",
        org="330106",
        purposes=["PATIENT_ACCESS"],
        person=PERSON,
        sub="app-user-77",
        mdtrt_cert_type="01",
        acr="real_person",
    )
    response = await world.request("GET", "/graphql", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {
        "sub": "app-user-77",
        "role": "patient",
        "purpose": "PATIENT_ACCESS",
        "person": PERSON,
        "professional": None,
    }


# -- purpose of use -------------------------------------------------------------------------


def _multi(world: World) -> dict[str, str]:
    token = world.demo_token(purposes=["TREATMENT", "EMERGENCY"])
    return {"Authorization": f"Bearer {token}"}


async def test_purpose_is_required_when_the_token_allows_several(world):
    response = await world.request("GET", "/graphql", headers=_multi(world))
    error = _assert_refused(world, response, 400, "PURPOSE_REQUIRED")
    assert error["extensions"]["allowedPurposes"] == ["TREATMENT", "EMERGENCY"]
    assert "X-Purpose-Of-Use" in error["message"]


# A break-glass reason: a code of the documented list and percent-encoded UTF-8 free text.
REASON = {"X-Break-Glass-Reason": "UNCONSCIOUS", "X-Break-Glass-Text": "%E6%98%8F%E8%BF%B7"}


@pytest.mark.parametrize("header", ["EMERGENCY", "emergency", " EMERGENCY "])
async def test_named_purpose_is_used(world, header):
    response = await world.request(
        "GET", "/graphql", headers={**_multi(world), "X-Purpose-Of-Use": header, **REASON}
    )
    assert response.status_code == 200
    assert response.json()["purpose"] == "EMERGENCY"


@pytest.mark.parametrize(
    "headers,code",
    [
        ({}, "BREAK_GLASS_REASON_REQUIRED"),
        ({"X-Break-Glass-Reason": "UNCONSCIOUS"}, "BREAK_GLASS_REASON_REQUIRED"),
        ({"X-Break-Glass-Text": "%E6%98%8F"}, "BREAK_GLASS_REASON_REQUIRED"),
        ({**REASON, "X-Break-Glass-Text": "   "}, "BREAK_GLASS_REASON_REQUIRED"),
        ({**REASON, "X-Break-Glass-Text": "%FF%FE"}, "BREAK_GLASS_REASON_REQUIRED"),
        ({**REASON, "X-Break-Glass-Text": "昏迷".encode()}, "BREAK_GLASS_REASON_REQUIRED"),
        ({**REASON, "X-Break-Glass-Text": "x" * 501}, "BREAK_GLASS_REASON_REQUIRED"),
        ({**REASON, "X-Break-Glass-Reason": "BORED"}, "BREAK_GLASS_REASON_UNKNOWN"),
    ],
    ids=[
        "none",
        "no text",
        "no code",
        "blank text",
        "not utf-8",
        "not percent-encoded",
        "too long",
        "unknown code",
    ],
)
async def test_emergency_without_a_reason_is_400_and_never_reaches_the_app(world, headers, code):
    response = await world.request(
        "GET", "/graphql", headers={**_multi(world), "X-Purpose-Of-Use": "EMERGENCY", **headers}
    )
    error = _assert_refused(world, response, 400, code)
    assert "X-Break-Glass-" in error["message"]  # names the header to fix
    if code == "BREAK_GLASS_REASON_UNKNOWN" or len(headers) < 2:
        assert "LIFE_THREATENING" in error["message"]  # and the codes a caller may give
    assert "BORED" not in error["message"] and "x" * 20 not in error["message"]


async def test_a_reason_at_the_length_limit_is_accepted(world):
    headers = {**_multi(world), "X-Purpose-Of-Use": "EMERGENCY", **REASON}
    response = await world.request(
        "GET", "/graphql", headers={**headers, "X-Break-Glass-Text": "x" * 500}
    )
    assert response.status_code == 200, response.text


async def test_other_purposes_need_no_reason(world):
    response = await world.request(
        "GET", "/graphql", headers={**_multi(world), "X-Purpose-Of-Use": "TREATMENT"}
    )
    assert response.status_code == 200


async def test_purpose_the_token_does_not_allow_is_403(world):
    response = await world.request(
        "GET", "/graphql", headers={**_multi(world), "X-Purpose-Of-Use": "RESEARCH"}
    )
    error = _assert_refused(world, response, 403, "PURPOSE_NOT_ALLOWED")
    assert "does not allow purpose RESEARCH" in error["message"]


async def test_single_purpose_token_may_still_not_claim_another(world):
    response = await world.request(
        "GET",
        "/graphql",
        headers={"Authorization": f"Bearer {world.demo_token()}", "X-Purpose-Of-Use": "SETTLEMENT"},
    )
    _assert_refused(world, response, 403, "PURPOSE_NOT_ALLOWED")


async def test_unknown_purpose_is_400(world):
    response = await world.request(
        "GET", "/graphql", headers={**_multi(world), "X-Purpose-Of-Use": "MARKETING"}
    )
    error = _assert_refused(world, response, 400, "PURPOSE_UNKNOWN")
    assert "X-Purpose-Of-Use is not a purpose of use" in error["message"]
    # The submitted value is logged and audited with the refusal: never repeated in it.
    assert "MARKETING" not in error["message"]


async def test_bad_token_is_401_even_with_a_purpose_header(world):
    response = await world.request("GET", "/graphql", headers={"X-Purpose-Of-Use": "TREATMENT"})
    _assert_refused(world, response, 401, "UNAUTHENTICATED")


# -- paths without a token ------------------------------------------------------------------


async def test_health_checks_need_no_token(world):
    assert (await world.request("GET", "/healthz")).status_code == 200
    assert len(world.calls) == 1


async def test_graphiql_page_opens_without_a_token_in_dev_mode_only(world):
    html = {"Accept": "text/html,application/xhtml+xml"}
    response = await world.request("GET", "/graphql", dev=True, headers=html)
    assert response.status_code == 200 and "GraphiQL" in response.text
    world.calls.clear()
    _assert_refused(
        world,
        await world.request("GET", "/graphql", dev=False, headers=html),
        401,
        "UNAUTHENTICATED",
    )


@pytest.mark.parametrize(
    "method, url, headers",
    [
        ("GET", "/graphql?query={__typename}", {"Accept": "text/html"}),
        ("GET", "/graphql", {"Accept": "application/json"}),
        ("POST", "/graphql", {"Accept": "text/html"}),
        ("GET", "/graphql/", {"Accept": "text/html"}),
    ],
)
async def test_dev_mode_lets_nothing_else_through(world, method, url, headers):
    response = await world.request(method, url, dev=True, headers=headers)
    _assert_refused(world, response, 401, "UNAUTHENTICATED")


# -- the trusted-issuer file at run time ----------------------------------------------------


async def test_withdrawn_issuer_is_refused_without_a_restart(world):
    app = world.app()  # one long-running gateway: the change must be seen without a restart
    bearer = {"Authorization": f"Bearer {world.es_token()}"}
    assert (await world.request("GET", "/graphql", app=app, headers=bearer)).status_code == 200
    text = world.issuers_file.read_text(encoding="utf-8")
    world.issuers_file.write_text(
        text.split(f'\n[[issuers]]\niss = "{ES_ISSUER}"')[0], encoding="utf-8"
    )
    world.calls.clear()
    response = await world.request("GET", "/graphql", app=app, headers=bearer)
    error = _assert_refused(world, response, 401, "UNAUTHENTICATED")
    assert "is not trusted" in error["message"]


async def test_unreadable_issuer_file_refuses_everyone(world):
    app = world.app()
    bearer = {"Authorization": f"Bearer {world.demo_token()}"}
    assert (await world.request("GET", "/graphql", app=app, headers=bearer)).status_code == 200
    world.calls.clear()
    world.issuers_file.write_text("[[issuers]\n", encoding="utf-8")
    response = await world.request("GET", "/graphql", app=app, headers=bearer)
    _assert_refused(world, response, 503, "IDENTITY_UNAVAILABLE")
    world.issuers_file.unlink()
    response = await world.request("GET", "/graphql", app=app, headers=bearer)
    _assert_refused(world, response, 503, "IDENTITY_UNAVAILABLE")


# -- verify_token directly: clock, lifetime and what the Principal holds ----------------------


def _registry(world: World) -> IssuerRegistry:
    return IssuerRegistry.load(world.issuers_file)


def test_principal_holds_the_verified_claims(world):
    iat = 1_800_000_000
    token = world.demo_token(iat=iat, exp=iat + 600, purposes=["TREATMENT", "EMERGENCY"])
    principal = verify_token(token, _registry(world), audience=AUDIENCE, now=iat + 1)
    assert principal.role is Role.CLINICIAN
    assert principal.purposes == {Purpose.TREATMENT, Purpose.EMERGENCY}
    assert (principal.org, principal.issuer, principal.token_id) == (CLINIC, DEMO_ISSUER, "t-1")
    assert principal.expires_at == datetime.fromtimestamp(iat + 600, UTC)
    assert principal.person_ref is None


def test_token_without_jti_gets_a_digest_as_its_id(world):
    token = world.demo_token(jti=DROP)
    principal = verify_token(token, _registry(world), audience=AUDIENCE)
    assert principal.token_id.startswith("sha256:") and token not in principal.token_id


@pytest.mark.parametrize("offset, ok", [(59, True), (61, False)])
def test_clock_skew_is_bounded_by_the_leeway(world, offset, ok):
    exp = 1_800_000_000
    token = world.demo_token(iat=exp - 600, exp=exp)
    if ok:
        verify_token(token, _registry(world), audience=AUDIENCE, now=exp + offset)
    else:
        with pytest.raises(AuthenticationError, match="expired"):
            verify_token(token, _registry(world), audience=AUDIENCE, now=exp + offset)


def test_maximum_lifetime_is_configurable(world):
    iat = 1_800_000_000
    token = world.demo_token(iat=iat, exp=iat + 7200)
    verify_token(token, _registry(world), audience=AUDIENCE, now=iat)
    with pytest.raises(AuthenticationError, match="lifetime 2h exceeds the maximum of 1h"):
        verify_token(token, _registry(world), audience=AUDIENCE, now=iat, max_lifetime_seconds=3600)


def test_issuer_must_be_trusted_for_our_audience(world):
    token = world.es_token(aud="other")
    with pytest.raises(AuthenticationError, match="not for audience 'medfed'"):
        verify_token(token, _registry(world), audience=AUDIENCE)
    # The ES issuer is trusted for "other", the demo issuer is not.
    assert verify_token(token, _registry(world), audience="other").issuer == ES_ISSUER
    with pytest.raises(AuthenticationError, match="not trusted for audience 'other'"):
        verify_token(world.demo_token(aud="other"), _registry(world), audience="other")


# -- other ASGI traffic and start-up wiring -------------------------------------------------


async def _raw(app, scope: dict) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "websocket.connect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_websocket_without_a_token_is_closed_before_the_app_runs(world):
    calls: list[dict] = []

    async def inner(scope, receive, send):
        calls.append(scope)

    app = AuthMiddleware(inner, RegistryFile(world.issuers_file), AUDIENCE)
    scope = {"type": "websocket", "path": "/graphql", "headers": [], "query_string": b""}
    sent = await _raw(app, scope)
    assert calls == []
    assert sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008
    token = world.demo_token().encode()
    await _raw(app, {**scope, "headers": [(b"authorization", b"Bearer " + token)]})
    assert calls[0]["state"]["principal"].role is Role.CLINICIAN


async def test_lifespan_passes_through_untouched(world):
    seen: list[str] = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    app = AuthMiddleware(inner, RegistryFile(world.issuers_file), AUDIENCE)
    await _raw(app, {"type": "lifespan"})
    assert seen == ["lifespan"]


def test_auth_options_sets_up_the_demo_issuer_in_dev_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(data_dir=tmp_path / "data", env={"MEDFED_DEV": "true"})
    options = auth_options(settings)
    assert options["audience"] == "medfed" and options["allow_graphiql_page"] is True
    assert options["registry_factory"]().issuer(DEMO_ISSUER) is not None


def test_outside_dev_mode_the_gateway_refuses_to_start_while_the_demo_issuer_is_trusted(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    auth_options(load_settings(data_dir=data, env={"MEDFED_DEV": "true"}))  # trusts demo
    outside = load_settings(data_dir=data, env={"MEDFED_DEV": "false"})
    with pytest.raises(DemoIssuerError, match="trusts the demo token issuer while dev mode is off"):
        auth_options(outside)
    issuers = data / "keys" / "issuers.toml"
    demo_text = issuers.read_text()
    # The demo key under another name is the demo issuer all the same.
    issuers.write_text(demo_text.replace(DEMO_ISSUER, "https://renamed.example").split("\n", 1)[1])
    with pytest.raises(DemoIssuerError):
        auth_options(outside)
    # Positive control: a file that trusts only another issuer starts outside dev mode.
    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    issuers.write_text(
        '[[issuers]]\niss = "https://idp.example"\naudiences = ["medfed"]\n\n'
        f'[[issuers.keys]]\nkid = "k1"\nalg = "EdDSA"\npublic_key = """\n{pem}"""\n\n'
        '[issuers.scope]\nroles = ["clinician"]\norgs = ["H33010600001"]\nperson = false\n'
        'purposes = ["TREATMENT"]\n'
    )
    assert auth_options(outside)["registry_factory"]().issuer(DEMO_ISSUER) is None


def test_auth_options_outside_dev_needs_an_issuers_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(data_dir=tmp_path / "data", env={"MEDFED_DEV": "false"})
    with pytest.raises(IssuerConfigError, match=r"issuers\.toml.*does not exist"):
        auth_options(settings)
    assert not (tmp_path / "data" / "keys" / "demo-issuer.pem").exists()


@pytest.mark.parametrize(
    "claim, value, reason",
    [
        ("exp", 1e308, "claim 'exp' must be a time"),
        ("iat", -1, "claim 'iat' must be a time"),
        ("nbf", float("inf"), "claim 'nbf' must be a time"),
        ("jti", "a\nb", "claim 'jti' must be at most 128 printable characters"),
        ("jti", "j" * 129, "claim 'jti' must be at most 128 printable characters"),
        ("sub", "", "claim 'sub' must be a non-empty string"),
    ],
)
def test_absurd_claim_values_are_refused_with_a_reason(world, claim, value, reason):
    with pytest.raises(AuthenticationError) as caught:
        verify_token(world.demo_token(**{claim: value}), _registry(world), audience=AUDIENCE)
    assert reason in caught.value.reason
