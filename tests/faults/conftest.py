"""The fault suite (marker ``faults``): each test adds its row to the table printed at the
end of the session (case, runs, acknowledged, lost, unlogged, 5xx; see ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from tests.support.faults import FAULT_ROWS, Table


@pytest.fixture
def fault_table(request):
    table = Table()
    yield table
    # The rows travel in the test's report, so the table is whole when the suite runs in
    # several worker processes (pytest-xdist) as well as in one.
    request.node.user_properties.append((FAULT_ROWS, [vars(row) for row in table.rows]))


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)
