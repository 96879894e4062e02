"""Fixtures of the adversarial suite: the victim's world, served by a fresh federation, and
a watch on every log record the suite's attacks make (all loggers at DEBUG): a record that
holds a personal value of the victim world fails the test that made it (or, for a record
made after a test's own check, such as an audit writer closing, the next check)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.adversarial import masked_secrets, secrets, world_rows
from tests.support.federation import BREAK_GLASS_REASON, Federation
from tests.support.log_leaks import LogCapture, leaks

# The victim's values, plain and masked, the emergency patients' and a break-glass reason.
LOG_VALUES = [*secrets(), *masked_secrets(), "急诊患者", "急诊诊断", BREAK_GLASS_REASON[1]]


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def world(data_dir):
    fed = await Federation(data_dir).setup()
    ref = await world_rows(fed)
    return fed, ref, fed.app()


def _check(capture: LogCapture, who: str) -> None:
    lines = capture.lines[:]
    capture.lines.clear()
    found = leaks(lines, LOG_VALUES)
    if found:
        # Where, never what: the logger, its message template and which value it held.
        where = "; ".join(
            f"{line.logger}: {line.template[:80]!r} holds value #{n}" for line, n in found[:5]
        )
        pytest.fail(f"{who}: {len(found)} log records hold a personal value: {where}")


@pytest.fixture(scope="package")
def log_capture() -> Iterator[LogCapture]:
    capture = LogCapture()
    capture.open_all()
    yield capture
    try:
        _check(capture, "the adversarial suite's last records")
    finally:
        capture.close_all()


@pytest.fixture(autouse=True)
def _no_personal_value_in_any_log_line(log_capture: LogCapture, request) -> Iterator[None]:
    log_capture.open_all()  # loggers made since the last test start open too
    yield
    _check(log_capture, request.node.nodeid)
