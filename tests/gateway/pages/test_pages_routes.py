"""The pages' routes without a browser: [pages] settings, the demo sign-in only in dev mode,
static files only from the pages' own folder, every answer with the page policy."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from gateway.config import ConfigError, Settings
from gateway.pages import page_routes
from gateway.pages.settings import pages_settings
from security.identity import ensure_demo_issuer


def settings(tmp_path: Path, *, dev: bool, pages: dict | None = None) -> Settings:
    plain = Settings(
        data_dir=tmp_path,
        host="127.0.0.1",
        port=0,
        dev=dev,
        sources=(),
        gateway_url="sqlite+aiosqlite:///:memory:",
        config_path=None,
    )
    return plain if pages is None else plain.with_tables(pages=pages)


async def get(app: Starlette, method: str, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.request(method, path, **kwargs)


@pytest.mark.parametrize(
    ("pages", "key"),
    [
        ({"oidc_issuer": "http://idp.example", "client_id": "x"}, "pages.oidc_issuer"),
        ({"oidc_issuer": "https://idp.example"}, "pages.client_id"),
        ({"client_id": "x"}, "pages.oidc_issuer"),
        ({"oidc_issuer": "https://idp.example", "client_id": ""}, "pages.client_id"),
        ({"issuer": "https://idp.example"}, "pages.issuer"),
    ],
)
def test_pages_settings_are_checked(tmp_path, pages, key):
    with pytest.raises(ConfigError) as refused:
        pages_settings(settings(tmp_path, dev=False, pages=pages))
    assert refused.value.key == key
    chosen = pages_settings(
        settings(
            tmp_path,
            dev=False,
            pages={"oidc_issuer": "https://idp.example/realm", "client_id": "medfed-pages"},
        )
    )
    assert chosen.issuer_origin == "https://idp.example"


async def test_the_demo_sign_in_exists_only_in_dev_mode(tmp_path):
    ensure_demo_issuer(tmp_path)
    production = Starlette(routes=page_routes(settings(tmp_path, dev=False)))
    for method, path in (("GET", "/pages/demo/people"), ("POST", "/pages/demo/token")):
        assert (await get(production, method, path, json={"role": "auditor"})).status_code in (
            404,
            405,
        )
    config = (await get(production, "GET", "/pages/config.json")).json()
    assert config == {"oidc": None, "demo": False}
    # Positive control: in dev mode the same request mints a demo token for that role.
    dev = Starlette(routes=page_routes(settings(tmp_path, dev=True)))
    minted = await get(dev, "POST", "/pages/demo/token", json={"role": "auditor"})
    assert minted.status_code == 200
    claims = jwt.decode(minted.json()["token"], options={"verify_signature": False})
    assert (claims["role"], claims["org"], claims["purposes"]) == ("auditor", "100000", ["AUDIT"])
    assert "professional" not in claims
    # The demo clinician is a doctor the identity provider names: it can sign prescriptions.
    minted = await get(dev, "POST", "/pages/demo/token", json={"role": "clinician"})
    claims = jwt.decode(minted.json()["token"], options={"verify_signature": False})
    assert (claims["org"], claims["professional"]) == ("H33010600001", "DH33010600001001")
    # Only the listed roles; a patient only among the listed persons.
    for body in ({"role": "admin"}, {"role": "patient", "person": "0" * 32}, {}):
        assert (await get(dev, "POST", "/pages/demo/token", json=body)).status_code == 400
    assert (await get(dev, "POST", "/pages/demo/token", content=b"role=auditor")).status_code == 415


async def test_static_files_come_from_the_pages_folder_only_with_the_policy(tmp_path):
    app = Starlette(
        routes=page_routes(
            settings(
                tmp_path,
                dev=False,
                pages={"oidc_issuer": "https://idp.example", "client_id": "medfed-pages"},
            )
        )
    )
    script = await get(app, "GET", "/pages/static/verify.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    policy = script.headers["content-security-policy"]
    assert "connect-src 'self' https://idp.example;" in policy
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
    for path in ("/pages/static/..%2F__init__.py", "/pages/static/__init__.py", "/pages/static/x"):
        assert (await get(app, "GET", path)).status_code == 404
    page = await get(app, "GET", "/console")
    assert page.status_code == 200 and page.headers["content-security-policy"] == policy
    assert "<script>" not in page.text  # only <script src>: nothing inline
