"""Session fixtures of the browser tests: one world (OIDC provider + gateway) and one
Chromium for all of them (Playwright's async API on the session's event loop)."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.support.browser import CHROMIUM, browser_missing, start_world


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    if reason := browser_missing():
        pytest.skip(reason)
    found = start_world(tmp_path_factory.mktemp("pages"))
    yield found
    found.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium():
    if reason := browser_missing():
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        await browser.close()
