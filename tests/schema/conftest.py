"""A small demo federation, built once for the statistics tests (through the real command)."""

from __future__ import annotations

import dataclasses

import pytest

from connectors.sql import migrate
from tests.support.demo import build
from tests.support.federation import Federation
from tests.support.postgres import run_sync


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("statistics") / "data"
    build(path, 800)
    return path


@pytest.fixture
def demo(demo_dir, tmp_path):
    """The built demo, with a fresh gateway database (ledger, audit log) for each test."""
    fed = Federation(demo_dir)
    gateway = tmp_path / "gateway.db"
    fed.settings = dataclasses.replace(
        fed.settings, gateway_url=f"sqlite+aiosqlite:///{gateway.as_posix()}"
    )
    run_sync(migrate.upgrade(fed.settings.gateway_spec))
    return fed
