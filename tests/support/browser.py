"""The browser tests' world: Chromium from the system's package manager driven by Playwright
for Python (never a downloaded browser), a real OpenID Connect provider (npm oidc-provider,
tests/support/oidc_provider.mjs) and a medfed gateway on loopback that trusts it by its
discovery document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from security.identity import ensure_demo_issuer
from security.identity.demo_issuer import DemoIssuer, issuers_toml
from tests.support import REPO
from tests.support.processes import Process, free_port
from tests.support.processes import medfed as medfed_process

CHROMIUM = Path("/usr/bin/chromium")
OIDC_PROVIDER = REPO / "node_modules" / "oidc-provider"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
CLIENT_ID = "medfed-pages"
SCREENSHOTS = REPO / "docs" / "img"
OIDC_SCOPE = (
    '[issuers.scope]\nroles = ["patient", "auditor"]\norgs = ["*"]\nperson = true\n'
    'purposes = ["PATIENT_ACCESS", "AUDIT"]\n'
)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return "Chromium is not installed (/usr/bin/chromium; `make test` installs it with apt-get)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing: run `make install`"
    if shutil.which("node") is None or not OIDC_PROVIDER.exists() or not AXE.exists():
        return "node_modules is missing oidc-provider or axe-core: run `make install` (npm ci)"
    return None


@dataclass
class World:
    data_dir: Path
    gateway: Process
    provider: Process
    demo: DemoIssuer
    patient: dict  # the demo person who signs in: personId, insuredIn, ...

    @property
    def url(self) -> str:
        return self.gateway.url

    def screenshot_path(self, name: str, fallback: Path) -> Path:
        # `make screenshots` (MEDFED_SCREENSHOTS=1) writes the README's pictures.
        if os.environ.get("MEDFED_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            return SCREENSHOTS / name
        return fallback / name

    def stop(self) -> None:
        self.gateway.stop()
        self.provider.stop()


def _two_province_person(config: Path, data_dir: Path) -> dict:
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "demo",
            "show",
            "--limit",
            "40",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    persons = [json.loads(line) for line in shown.splitlines() if line.strip()]
    return next(p for p in persons if len(p["insuredIn"]) >= 2)


def start_world(data_dir: Path) -> World:
    from tests.support.demo import build

    build(data_dir, 60)
    demo = ensure_demo_issuer(data_dir)
    gw_port, idp_port = free_port(), free_port()
    gateway_url, issuer = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{idp_port}"
    keys = data_dir / "keys"
    trusted = keys / "trusted.toml"
    trusted.write_text(
        issuers_toml(demo) + f'\n[[issuers]]\niss = "{issuer}"\naudiences = ["medfed"]\n'
        f'discovery = "{issuer}/.well-known/openid-configuration"\n\n{OIDC_SCOPE}',
        encoding="utf-8",
    )
    trusted.chmod(0o644)
    config = data_dir / "medfed.toml"
    config.write_text(
        (REPO / "medfed.toml").read_text(encoding="utf-8")
        + f'\n[identity]\nissuers_file = "{trusted}"\n\n[pages]\noidc_issuer = "{issuer}"\n'
        f'client_id = "{CLIENT_ID}"\nresource = "{gateway_url}/graphql"\nscope = "openid api"\n',
        encoding="utf-8",
    )
    patient = _two_province_person(config, data_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {
        **json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key)),
        "kid": "idp-1",
        "alg": "ES256",
        "use": "sig",
    }
    provider_config = data_dir / "oidc.json"
    provider_config.write_text(
        json.dumps(
            {
                "port": idp_port,
                "issuer": issuer,
                "clientId": CLIENT_ID,
                "redirectUris": [f"{gateway_url}/signin"],
                "resource": f"{gateway_url}/graphql",
                "jwk": jwk,
                "accounts": {
                    "patient": {
                        "role": "patient",
                        "org": patient["insuredIn"][0],
                        "purposes": ["PATIENT_ACCESS"],
                        "person": patient["personId"],
                        "mdtrt_cert_type": "01",
                        "acr": "real_person",
                    },
                    "officer": {"role": "auditor", "org": "100000", "purposes": ["AUDIT"]},
                },
            }
        )
    )
    provider = Process(
        ["node", str(REPO / "tests" / "support" / "oidc_provider.mjs"), str(provider_config)],
        idp_port,
        data_dir / "oidc.log",
        "/.well-known/openid-configuration",
    ).start()
    try:
        gateway = medfed_process(data_dir, port=gw_port, config=config).start()
    except Exception:
        provider.stop()
        raise
    return World(data_dir, gateway, provider, demo, patient)
