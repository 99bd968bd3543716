"""Time as the workqueue sees it: a monotonic ``now`` and a way to wait.

Every timed decision in the queue layers (when a delayed key becomes ready,
how long a key waited, how long a drain may take, how fast a token bucket
refills) goes through a ``Clock``. Production uses ``RealClock``; tests use
``FakeClock`` and move time with ``step`` so they never sleep and never
depend on how busy the machine is.

A waiter always holds a ``threading.Condition`` and re-checks its own state
after ``wait_until`` returns, so a clock may wake it early (a notify, a step
that did not reach the deadline) without harm. Waits take an absolute
deadline, not a timeout: a fake clock stepped between the caller reading
``now`` and starting to wait must still see that the deadline has passed.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """The time source and timed wait used by the workqueue."""

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        """Wait on ``condition`` (whose lock the caller holds) until it is
        notified or this clock reaches ``deadline``.

        May return early; callers loop and re-check what they wait for.
        ``None`` waits for a notify only.
        """


class RealClock:
    """Wall time from ``time.monotonic``."""

    def now(self) -> float:
        return time.monotonic()

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        if deadline is None:
            condition.wait()
            return
        timeout = deadline - time.monotonic()
        if timeout > 0:
            condition.wait(timeout)


class FakeClock:
    """Time that moves only when a test calls ``step``.

    A thread waiting with a timeout is woken on every step (and re-checks its
    deadline), so stepping past a deadline releases it without real waiting.
    """

    def __init__(self, start: float = 1000.0) -> None:
        # A non-zero start catches code that treats 0.0 as "unset".
        self._now = start
        self._lock = threading.Lock()
        self._waiting: dict[int, threading.Condition] = {}

    def now(self) -> float:
        with self._lock:
            return self._now

    def step(self, seconds: float) -> None:
        """Advance time and wake every waiter so it can look at the new time."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._lock:
            self._now += seconds
            conditions = list(self._waiting.values())
        # Notify outside our own lock: a waiter registers while holding its
        # condition and then takes ours, so holding both here could deadlock.
        for condition in conditions:
            with condition:
                condition.notify_all()

    def waiters(self) -> int:
        """How many threads are blocked in ``wait_until``; a test polls this
        before stepping when a thread must have fixed its deadline first."""
        with self._lock:
            return len(self._waiting)

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        token = threading.get_ident()
        # Checked and registered under our lock, while the caller holds
        # ``condition``: a step either happened before (we see its time) or
        # must take ``condition`` to notify us after we started waiting.
        with self._lock:
            if deadline is not None and self._now >= deadline:
                return
            self._waiting[token] = condition
        try:
            condition.wait()
        finally:
            with self._lock:
                self._waiting.pop(token, None)
