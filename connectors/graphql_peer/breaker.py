"""A circuit breaker: stop calling a peer that keeps failing, try again after a cooldown."""

from __future__ import annotations

import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class BreakerOpen(Exception):
    """The peer is not called: it failed too often and its cooldown has not passed."""


class CircuitBreaker:
    def __init__(self, failures: int, cooldown: float) -> None:
        self.threshold, self.cooldown = failures, cooldown
        self.consecutive = 0
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if time.monotonic() - self.opened_at >= self.cooldown else OPEN

    def admit(self) -> None:
        """Raise BreakerOpen unless a call may go out. Half-open lets one probe through at a
        time, so a recovering peer is not hit by every waiting request at once."""
        state = self.state
        if state == OPEN or (state == HALF_OPEN and self._probing):
            raise BreakerOpen
        if state == HALF_OPEN:
            self._probing = True

    def success(self) -> None:
        self.consecutive, self.opened_at, self._probing = 0, None, False

    def failure(self) -> None:
        self.consecutive += 1
        if self._probing or self.consecutive >= self.threshold:
            self.opened_at = time.monotonic()  # a failed probe restarts the cooldown
        self._probing = False

    def snapshot(self) -> dict:
        return {"breaker": self.state, "consecutive_failures": self.consecutive}
