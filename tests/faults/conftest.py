"""The fault suite (marker ``faults``): each test adds its row to the table printed at the
end of the session (case, runs, acknowledged, lost, unlogged, 5xx)."""

from __future__ import annotations

import pytest

from tests.support.faults import TABLE, Table


@pytest.fixture
def fault_table() -> Table:
    return TABLE


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)


def pytest_terminal_summary(terminalreporter):
    if TABLE.rows:
        terminalreporter.section("faults")
        terminalreporter.write_line(TABLE.render())
