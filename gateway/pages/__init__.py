"""The pages: ``/patient`` (a patient's cloud record) and ``/console`` (the security team's
audit console), static files served as they are (no build step), each an OpenID Connect
public client of the configured identity provider, using only the public GraphQL API with
the signed-in person's own token.

``[pages]`` in ``medfed.toml``::

    [pages]
    oidc_issuer = "https://idp.example"     # the provider the pages sign in with
    client_id = "medfed-pages"              # a public client (no secret; PKCE S256)
    resource = "https://medfed.example/graphql"   # RFC 8707 resource the API token is for
    scope = "openid"

The provider must also be an ``[[issuers]]`` entry of the trusted-issuers file (by its
discovery document), with the scope that fits the roles it signs in. In dev mode
``/signin`` also lets a newcomer pick a demo person or role (:mod:`gateway.pages.demo`).

Every page answer carries a strict Content-Security-Policy: scripts and styles from this
origin only (no inline script), connections to this origin and the provider only.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.config import Settings
from gateway.edge.responses import refusal
from gateway.pages.demo import demo_routes
from gateway.pages.settings import PagesSettings, pages_settings

STATIC = Path(__file__).parent / "static"
PREFIXES = ("/pages/",)
PATHS = ("/patient", "/console", "/signin")
PAGES = {"/patient": "patient.html", "/console": "console.html", "/signin": "signin.html"}
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}


def content_security_policy(chosen: PagesSettings) -> str:
    connect = "'self'" + (f" {chosen.issuer_origin}" if chosen.issuer_origin else "")
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def page_routes(settings: Settings) -> list[Route]:
    chosen = pages_settings(settings)
    headers = {
        "content-security-policy": content_security_policy(chosen),
        "cache-control": "no-cache",
        "cross-origin-opener-policy": "same-origin",
    }
    files = {p.name: p for p in STATIC.iterdir() if p.suffix in TYPES}

    def page(name: str):
        async def serve(_request: Request) -> Response:
            return FileResponse(files[name], media_type="text/html", headers=headers)

        return serve

    async def static(request: Request) -> Response:
        found = files.get(request.path_params["name"])
        if found is None:
            return refusal(404, "NOT_FOUND", "no such page file")
        return FileResponse(
            found, media_type=TYPES[found.suffix] + "; charset=utf-8", headers=headers
        )

    async def config(_request: Request) -> Response:
        return JSONResponse(chosen.public(settings.dev), headers=headers)

    return [
        *(Route(path, page(name)) for path, name in PAGES.items()),
        Route("/pages/config.json", config),
        Route("/pages/static/{name}", static),
        *(demo_routes(settings) if settings.dev else ()),
    ]
