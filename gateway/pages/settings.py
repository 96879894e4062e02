"""``[pages]``: the identity provider the pages sign in with (see :mod:`gateway.pages`); the
table is :class:`gateway.config.tables.PagesSettings`."""

from __future__ import annotations

from gateway.config import Settings
from gateway.config.tables import PagesSettings

__all__ = ["PagesSettings", "pages_settings"]


def pages_settings(settings: Settings) -> PagesSettings:
    return settings.config.pages
