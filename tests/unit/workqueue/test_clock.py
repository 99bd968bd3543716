"""The fake clock releases timed waits only when stepped past their deadline."""

from __future__ import annotations

import threading

import pytest

from disvc.controller.workqueue.clock import FakeClock, RealClock
from disvc.testing.fixtures import eventually


def _waiting(clock: FakeClock, count: int) -> None:
    assert clock.waiters() == count


def test_a_wait_returns_once_the_clock_passes_its_deadline() -> None:
    clock = FakeClock()
    condition = threading.Condition()
    deadline = clock.now() + 10.0
    released: list[float] = []

    def wait() -> None:
        with condition:
            while clock.now() < deadline:
                clock.wait_until(condition, deadline)
            released.append(clock.now())

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    eventually(lambda: _waiting(clock, 1))
    clock.step(9.0)
    eventually(lambda: _waiting(clock, 1))
    assert released == []

    clock.step(1.0)

    thread.join(5)
    assert released == [deadline]


def test_a_deadline_already_passed_does_not_wait() -> None:
    clock = FakeClock()
    condition = threading.Condition()
    with condition:
        clock.wait_until(condition, clock.now())
    assert clock.waiters() == 0


def test_time_only_moves_forward() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError):
        clock.step(-1.0)


def test_real_clock_is_monotonic_and_skips_past_deadlines() -> None:
    clock = RealClock()
    before = clock.now()
    condition = threading.Condition()
    with condition:
        clock.wait_until(condition, before - 1.0)
    assert clock.now() >= before
