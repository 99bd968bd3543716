"""The fake clock releases timed waits only when stepped past their deadline."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from disvc.controller.clock import FakeClock, RealClock, rfc3339
from disvc.testing.fixtures import eventually


def _waiting(clock: FakeClock, count: int) -> None:
    assert clock.waiters() == count


def test_a_wait_returns_once_the_clock_passes_its_deadline() -> None:
    clock = FakeClock()
    condition = threading.Condition()
    deadline = clock.monotonic() + 10.0
    released: list[float] = []

    def wait() -> None:
        with condition:
            while clock.monotonic() < deadline:
                clock.wait_until(condition, deadline)
            released.append(clock.monotonic())

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
        clock.wait_until(condition, clock.monotonic())
    assert clock.waiters() == 0


def test_time_only_moves_forward() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError):
        clock.step(-1.0)


def test_real_clock_is_monotonic_and_skips_past_deadlines() -> None:
    clock = RealClock()
    before = clock.monotonic()
    condition = threading.Condition()
    with condition:
        clock.wait_until(condition, before - 1.0)
    assert clock.monotonic() >= before


def test_the_fake_wall_clock_moves_with_the_monotonic_one() -> None:
    clock = FakeClock()
    before = clock.now()
    clock.step(90.0)
    assert (clock.now() - before).total_seconds() == 90.0


def test_rfc3339_writes_utc_with_a_z_in_seconds_or_microseconds() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2026-03-04T03:06:07Z"
    assert rfc3339(moment, micro=True) == "2026-03-04T03:06:07.890123Z"
