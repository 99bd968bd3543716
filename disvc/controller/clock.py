"""Time as the controller sees it: one ``Clock`` for every timed decision.

Two kinds of time, never mixed: ``monotonic`` seconds (only differences
mean anything; they never jump) measure waits, backoffs and lease expiry;
``now`` is the wall-clock UTC moment, written into objects for people and
tools (Event and Lease timestamps, a reconcile's "now"). ``wait_until``
blocks on a ``threading.Condition`` until a monotonic deadline, so the
workqueue can wait on the same clock it measures with.

Production uses ``RealClock``; tests use ``FakeClock`` and move time with
``step``, so they never sleep and never depend on how busy the machine is.
A waiter always re-checks its own state after ``wait_until`` returns, so a
clock may wake it early (a notify, a step short of the deadline) without
harm. Waits take an absolute deadline, not a timeout: a fake clock stepped
between the caller reading ``monotonic`` and starting to wait must still
see that the deadline has passed. As k8s.io/utils/clock is to client-go,
this module sits below everything that keeps time, the workqueue included.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """The time source and timed wait used across the controller."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""

    def now(self) -> datetime:
        """The wall-clock moment, in UTC."""

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        """Wait on ``condition`` (whose lock the caller holds) until it is
        notified or ``monotonic`` reaches ``deadline``.

        May return early; callers loop and re-check what they wait for.
        ``None`` waits for a notify only.
        """


class RealClock:
    """``time.monotonic`` and the system's wall clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        if deadline is None:
            condition.wait()
            return
        timeout = deadline - time.monotonic()
        if timeout > 0:
            condition.wait(timeout)


def rfc3339(moment: datetime, *, micro: bool = False) -> str:
    """``moment`` in UTC as RFC 3339 with a ``Z``: whole seconds (``metav1.Time``,
    Event and condition timestamps) or microseconds (``metav1.MicroTime``, Leases)."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return moment.astimezone(UTC).strftime(fmt)


FAKE_WALL_START = datetime(2026, 1, 1, tzinfo=UTC)
"""Where a ``FakeClock``'s wall time starts unless told otherwise."""


class FakeClock:
    """Time that moves only when a test calls ``step``.

    The wall clock moves with the monotonic one, from ``wall_start``. A
    thread waiting with a deadline is woken on every step (and re-checks its
    deadline), so stepping past a deadline releases it without real waiting.
    """

    def __init__(self, start: float = 1000.0, wall_start: datetime = FAKE_WALL_START) -> None:
        # A non-zero start catches code that treats 0.0 as "unset".
        self._start = start
        self._now = start
        self._wall_start = wall_start
        self._lock = threading.Lock()
        self._waiting: dict[int, threading.Condition] = {}

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def now(self) -> datetime:
        with self._lock:
            return self._wall_start + timedelta(seconds=self._now - self._start)

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
