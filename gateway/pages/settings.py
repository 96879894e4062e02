"""``[pages]``: the identity provider the pages sign in with (see :mod:`gateway.pages`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.config import ConfigError, Settings
from security.identity.jwks import JwksConfigError, check_url

KEYS = ("oidc_issuer", "client_id", "resource", "scope")


@dataclass(frozen=True, slots=True)
class PagesSettings:
    oidc_issuer: str | None = None
    client_id: str | None = None
    resource: str | None = None
    scope: str = "openid"

    @property
    def issuer_origin(self) -> str | None:
        if not self.oidc_issuer:
            return None
        parts = urlsplit(self.oidc_issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def public(self, dev: bool) -> dict[str, Any]:
        """What the pages' scripts are told (nothing secret: a public client has none)."""
        oidc = None
        if self.oidc_issuer:
            oidc = {
                "issuer": self.oidc_issuer,
                "clientId": self.client_id,
                "resource": self.resource,
                "scope": self.scope,
            }
        return {"oidc": oidc, "demo": dev}


def pages_settings(settings: Settings) -> PagesSettings:
    raw = settings.extra.get("pages") or {}
    if not isinstance(raw, dict):
        raise ConfigError("pages", "must be a table ([pages])")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(f"pages.{unknown[0]}", f"is not a setting (one of {', '.join(KEYS)})")
    for key in KEYS:
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise ConfigError(f"pages.{key}", "must be a non-empty string")
    if "oidc_issuer" in raw:
        try:
            check_url(raw["oidc_issuer"], "the issuer")
        except JwksConfigError as exc:
            raise ConfigError("pages.oidc_issuer", str(exc)) from None
        if "client_id" not in raw:
            raise ConfigError("pages.client_id", "is required with oidc_issuer")
    elif set(raw) - {"scope"}:
        raise ConfigError("pages.oidc_issuer", "is required with client_id and resource")
    return PagesSettings(**raw)
