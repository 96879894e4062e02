"""Shared material for the identity tests: a demo issuer plus a second, ES256 issuer, a
Starlette app behind the auth middleware that records whether it was ever reached, and
helpers to sign arbitrary (also hostile) tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from gateway.auth import AuthMiddleware
from security.identity import DEMO_ISSUER, DEMO_KID, RegistryFile, ensure_demo_issuer
from security.identity.demo_issuer import DemoIssuer, issuers_toml

ES_ISSUER = "https://idp.hospital.example"
ES_KID = "es-1"
# The hospital identity provider's scope: its own clinicians and pharmacists, never patients.
ES_SCOPE = (
    '[issuers.scope]\nroles = ["clinician", "pharmacist"]\norgs = ["H33010600001", '
    '"P33010600101"]\nperson = false\npurposes = ["TREATMENT", "EMERGENCY"]\n'
)
AUDIENCE = "medfed"
CLINIC = "H33010600001"
PERSON = "0123456789abcdef0123456789abcdef"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned(header: dict, payload: dict, signature: bytes = b"") -> str:
    """A token put together by hand, for headers and signatures PyJWT would not produce."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    return f"{head}.{body}.{b64url(signature)}"


def hs256_with(secret: bytes, header: dict, payload: dict) -> str:
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(mac)}"


def claims(**overrides) -> dict:
    """Valid clinician claims for the demo issuer, issued now for an hour."""
    now = int(time.time())
    payload = {
        "iss": DEMO_ISSUER,
        "aud": AUDIENCE,
        "sub": "dr-wang",
        "role": "clinician",
        "org": CLINIC,
        "purposes": ["TREATMENT"],
        "iat": now,
        "exp": now + 3600,
        "jti": "t-1",
    }
    for key, value in overrides.items():
        if value is DROP:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


DROP = object()


@dataclass
class World:
    data_dir: Path
    demo: DemoIssuer
    es_key: ec.EllipticCurvePrivateKey
    issuers_file: Path
    calls: list[Request] = field(default_factory=list)

    def demo_token(self, **overrides) -> str:
        return jwt.encode(
            claims(**overrides), self.demo.private_key, algorithm="EdDSA", headers={"kid": DEMO_KID}
        )

    def es_token(self, **overrides) -> str:
        return jwt.encode(
            claims(iss=ES_ISSUER, **overrides),
            self.es_key,
            algorithm="ES256",
            headers={"kid": ES_KID},
        )

    def demo_public_pem(self) -> bytes:
        return self.demo.public_pem().encode("ascii")

    def app(self, *, dev: bool = False) -> AuthMiddleware:
        async def graphql(request: Request):
            self.calls.append(request)
            principal = request.state.principal
            if principal is None:
                return PlainTextResponse("<html>GraphiQL</html>", media_type="text/html")
            return JSONResponse(
                {
                    "sub": principal.sub,
                    "role": principal.role.value,
                    "purpose": request.state.purpose.value,
                    "person": principal.person_ref,
                    "professional": principal.professional,
                }
            )

        async def healthz(request: Request):
            self.calls.append(request)
            return PlainTextResponse("ok")

        inner = Starlette(
            routes=[Route("/graphql", graphql, methods=["GET", "POST"]), Route("/healthz", healthz)]
        )
        return AuthMiddleware(
            inner,
            RegistryFile(self.issuers_file, min_interval=0),
            AUDIENCE,
            allow_graphiql_page=dev,
        )

    async def request(
        self, method: str, url: str, *, dev: bool = False, app=None, **kwargs
    ) -> httpx.Response:
        """One HTTP request through the full ASGI stack (``app`` defaults to a fresh one)."""
        transport = httpx.ASGITransport(app=app or self.app(dev=dev))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, url, **kwargs)


def make_world(data_dir: Path) -> World:
    demo = ensure_demo_issuer(data_dir)
    es_key = ec.generate_private_key(ec.SECP256R1())
    keys = data_dir / "keys"
    (keys / "es-1.pem").write_bytes(
        es_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    issuers_file = keys / "trusted.toml"
    issuers_file.write_text(
        issuers_toml(demo)
        + f'\n[[issuers]]\niss = "{ES_ISSUER}"\naudiences = ["{AUDIENCE}", "other"]\n\n'
        f'[[issuers.keys]]\nkid = "{ES_KID}"\nalg = "ES256"\npublic_key_file = "es-1.pem"\n\n'
        + ES_SCOPE,
        encoding="utf-8",
    )
    return World(data_dir=data_dir, demo=demo, es_key=es_key, issuers_file=issuers_file)


def public_pem(private_key) -> str:
    """The PEM public key of an Ed25519 or EC private key, for an issuers file."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
