"""Issuer scope through the whole gateway: a trusted issuer's signature is accepted only for
what its scope lets it assert. A hospital's identity provider cannot mint an auditor, another
hospital's clinician, a purpose it was not given, or a patient; only the patient identity
provider links a token to a person. Each refusal is a 401 naming the claim, and each has its
positive control (the same issuer within its scope, or the patient IdP for the patient)."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from security.identity import DEMO_ISSUER, DEMO_KID, ensure_demo_issuer
from security.identity.demo_issuer import GENERATED_MARK, issuers_toml
from tests.support.adversarial import NAME, READ, leaked
from tests.support.identity import public_pem

HOSPITAL_IDP = "https://idp.hospital.example"
ECRED_IDP = "https://ecred.nhsa.example"  # the national e-credential issuer (patients)
SCOPES = f"""
[[issuers]]
iss = "{HOSPITAL_IDP}"
audiences = ["medfed"]

[[issuers.keys]]
kid = "h-1"
alg = "ES256"
public_key = '''
{{hospital}}'''

[issuers.scope]
roles = ["clinician", "pharmacist"]
orgs = ["H37010200003"]
regions = ["330100"]
person = false
purposes = ["TREATMENT", "EMERGENCY"]

[[issuers]]
iss = "{ECRED_IDP}"
audiences = ["medfed"]

[[issuers.keys]]
kid = "e-1"
alg = "EdDSA"
public_key = '''
{{ecred}}'''

[issuers.scope]
roles = ["patient"]
orgs = ["*"]
person = true
purposes = ["PATIENT_ACCESS"]
"""


@pytest.fixture
def idps(world):
    """The world's gateway trusting, besides the demo issuer, a Hangzhou-and-Jinan hospital
    identity provider and the national e-credential issuer, each with its own scope."""
    fed, ref, _ = world
    hospital = ec.generate_private_key(ec.SECP256R1())
    ecred = ed25519.Ed25519PrivateKey.generate()
    demo = ensure_demo_issuer(fed.data_dir)
    path = fed.data_dir / "keys" / "issuers.toml"
    text = issuers_toml(demo).replace(GENERATED_MARK + "\n", "")  # keep our edits
    path.write_text(
        text
        + SCOPES.replace("{hospital}", public_pem(hospital)).replace("{ecred}", public_pem(ecred)),
        encoding="utf-8",
    )
    path.chmod(0o644)
    keys = {HOSPITAL_IDP: (hospital, "ES256", "h-1"), ECRED_IDP: (ecred, "EdDSA", "e-1")}
    keys[DEMO_ISSUER] = (demo.private_key, "EdDSA", DEMO_KID)

    def token(iss: str, **claims) -> str:
        key, alg, kid = keys[iss]
        now = int(time.time())
        payload = {
            "iss": iss,
            "aud": "medfed",
            "sub": "someone",
            "iat": now,
            "exp": now + 600,
            "role": "clinician",
            "org": "H37010200003",
            "purposes": ["TREATMENT"],
            **claims,
        }
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})

    return fed, ref, fed.app(), token


async def ask(fed, app, token: str, ref: str, purpose: str | None = None):
    async with fed.client(app, token, purpose) as c:
        return await c.post("/graphql", json={"query": READ, "variables": {"id": ref}})


@pytest.mark.parametrize(
    "iss, claims, claim",
    [
        # The attack of the issue: a hand-made auditor of a hospital.
        (HOSPITAL_IDP, {"role": "auditor", "org": "H33010600001", "purposes": ["AUDIT"]}, "role"),
        (HOSPITAL_IDP, {"org": "H22010200005"}, "org"),  # another province's hospital
        (HOSPITAL_IDP, {"org": "H33020300002"}, "org"),  # Ningbo: outside its region 330100
        (HOSPITAL_IDP, {"purposes": ["TREATMENT", "AUDIT"]}, "purposes"),
        (
            HOSPITAL_IDP,
            {
                "role": "patient",
                "org": "330106",
                "purposes": ["PATIENT_ACCESS"],
                "person": "a" * 32,
            },
            "role",
        ),
        (ECRED_IDP, {"role": "clinician"}, "role"),  # the patient IdP mints no staff
        (DEMO_ISSUER, {"org": "H82000000001"}, "org"),  # the demo issuer has a scope too
    ],
)
async def test_a_claim_outside_its_issuers_scope_is_401_naming_the_claim(idps, iss, claims, claim):
    fed, ref, app, token = idps
    response = await ask(fed, app, token(iss, **claims), ref, claims.get("purposes", [None])[0])
    assert response.status_code == 401, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert (
        error["message"].startswith(f"claim '{claim}' ")
        and "outside the scope" in (error["message"])
    )
    assert "\n" not in error["message"] and not leaked(response.text, NAME)


async def test_only_the_patient_identity_provider_links_a_token_to_a_person(idps):
    fed, ref, app, token = idps
    # A hospital IdP whose scope had patients would still need person = true; this one has
    # neither, so a patient token for the victim is refused before anything is read.
    forged = token(
        HOSPITAL_IDP, role="patient", org="370102", purposes=["PATIENT_ACCESS"], person=ref
    )
    response = await ask(fed, app, forged, ref)
    assert response.status_code == 401 and "claim 'role'" in response.text
    assert not leaked(response.text, NAME)
    # Positive control: the e-credential issuer's patient token reads the victim's own record.
    own = token(
        ECRED_IDP,
        role="patient",
        org="370102",
        purposes=["PATIENT_ACCESS"],
        person=ref,
        mdtrt_cert_type="01",
        acr="real_person",
    )
    response = await ask(fed, app, own, ref)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["person"]["name"] == NAME


async def test_within_its_scope_the_hospital_idp_is_accepted(idps):
    fed, ref, app, token = idps
    # Jinan (listed exactly) treats the victim: its clinician, minted by the hospital IdP,
    # reads the name. A Hangzhou clinician (inside region 330100) is accepted and denied.
    response = await ask(fed, app, token(HOSPITAL_IDP), ref, "TREATMENT")
    assert response.status_code == 200 and response.json()["data"]["person"]["name"] == NAME
    hangzhou = token(HOSPITAL_IDP, org="H33010600001", purposes=["TREATMENT", "EMERGENCY"])
    response = await ask(fed, app, hangzhou, ref, "TREATMENT")
    assert response.status_code == 200 and not leaked(response.text, NAME)
