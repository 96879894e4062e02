"""Fixtures of the adversarial suite: the victim's world, served by a fresh federation."""

from __future__ import annotations

import pytest

from tests.support.adversarial import world_rows
from tests.support.federation import Federation


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await world_rows(fed)
    return fed, ref, fed.app()
