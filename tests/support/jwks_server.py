"""A real HTTP server on loopback that publishes an OpenID Connect discovery document and a
JWKS whose keys a test can rotate, for the identity tests of providers trusted by discovery.
It counts the requests it answered, so caching and refresh throttling can be checked."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


class Provider:
    def __init__(self) -> None:
        self.keys: dict[str, object] = {}  # kid -> private key
        self.hits: dict[str, int] = {"discovery": 0, "jwks": 0}
        self.issuer_override: str | None = None
        self.down = False
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if provider.down:
                    self.send_error(503)
                    return
                if self.path == "/.well-known/openid-configuration":
                    provider.hits["discovery"] += 1
                    body = {
                        "issuer": provider.issuer_override or provider.iss,
                        "jwks_uri": provider.iss + "/jwks",
                    }
                elif self.path == "/jwks":
                    provider.hits["jwks"] += 1
                    body = {"keys": [provider.public_jwk(k) for k in provider.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.iss = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.discovery = self.iss + "/.well-known/openid-configuration"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_key(self, kid: str, kind: str = "ES256") -> object:
        if kind == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        elif kind == "EdDSA":
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        return key

    def public_jwk(self, kid: str) -> dict:
        key = self.keys[kid]
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
            jwk["alg"] = "ES256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
        else:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            jwk["alg"] = "RS256"
        return {**jwk, "kid": kid, "use": "sig"}

    def token(self, kid: str, claims: dict, alg: str | None = None) -> str:
        key = self.keys[kid]
        if alg is None:
            alg = (
                "ES256"
                if isinstance(key, ec.EllipticCurvePrivateKey)
                else "EdDSA"
                if isinstance(key, ed25519.Ed25519PrivateKey)
                else "RS256"
            )
        now = int(time.time())
        payload = {"iss": self.iss, "iat": now, "exp": now + 600, **claims}
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})

    def issuers_entry(self, scope: str) -> str:
        return (
            f'[[issuers]]\niss = "{self.iss}"\naudiences = ["medfed"]\n'
            f'discovery = "{self.discovery}"\n\n{scope}'
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
