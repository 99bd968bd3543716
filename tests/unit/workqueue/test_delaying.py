"""``add_after``: keys become ready in deadline order, on a stepped clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from disvc.controller.clock import FakeClock
from disvc.controller.workqueue.delaying import DelayingQueue
from disvc.testing.fixtures import eventually


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> Iterator[DelayingQueue[str]]:
    queue: DelayingQueue[str] = DelayingQueue("test", clock=clock)
    yield queue
    queue.shut_down()


def _ready(queue: DelayingQueue[str], count: int) -> None:
    assert len(queue) == count


def test_a_delayed_key_is_not_ready_until_its_time(clock: FakeClock, queue: DelayingQueue[str]) -> None:
    queue.add_after("ns/a", 5.0)
    clock.step(4.9)
    assert len(queue) == 0
    assert queue.waiting() == 1

    clock.step(0.1)

    eventually(lambda: _ready(queue, 1))
    assert queue.get() == ("ns/a", False)
    assert queue.waiting() == 0


def test_delayed_keys_come_out_in_deadline_order(clock: FakeClock, queue: DelayingQueue[str]) -> None:
    queue.add_after("ns/late", 3.0)
    queue.add_after("ns/early", 1.0)
    queue.add_after("ns/middle", 2.0)

    order = []
    for _ in range(3):
        clock.step(1.0)
        eventually(lambda: _ready(queue, 1))
        order.append(queue.get()[0])

    assert order == ["ns/early", "ns/middle", "ns/late"]


def test_keys_due_at_the_same_step_keep_their_deadline_order(clock: FakeClock, queue: DelayingQueue[str]) -> None:
    queue.add_after("ns/b", 2.0)
    queue.add_after("ns/a", 1.0)

    clock.step(5.0)

    eventually(lambda: _ready(queue, 2))
    assert [queue.get()[0], queue.get()[0]] == ["ns/a", "ns/b"]


def test_a_shorter_delay_for_a_waiting_key_wins(clock: FakeClock, queue: DelayingQueue[str]) -> None:
    queue.add_after("ns/a", 10.0)
    queue.add_after("ns/a", 1.0)
    assert queue.waiting() == 1

    clock.step(1.0)

    eventually(lambda: _ready(queue, 1))
    assert queue.waiting() == 0


def test_a_longer_delay_for_a_waiting_key_does_not_postpone_it(clock: FakeClock, queue: DelayingQueue[str]) -> None:
    queue.add_after("ns/a", 1.0)
    queue.add_after("ns/a", 10.0)

    clock.step(1.0)

    eventually(lambda: _ready(queue, 1))
    assert queue.waiting() == 0


def test_no_delay_adds_at_once(queue: DelayingQueue[str]) -> None:
    queue.add_after("ns/a", 0.0)
    queue.add_after("ns/b", -1.0)

    assert len(queue) == 2


def test_a_delayed_key_already_queued_is_not_duplicated(clock: FakeClock, queue: DelayingQueue[str]) -> None:
    queue.add("ns/a")
    queue.add_after("ns/a", 1.0)

    clock.step(1.0)
    eventually(lambda: _assert_waiting(queue, 0))

    assert len(queue) == 1


def _assert_waiting(queue: DelayingQueue[str], count: int) -> None:
    assert queue.waiting() == count


def test_shut_down_drops_waiting_keys_and_ignores_new_ones(clock: FakeClock, queue: DelayingQueue[str]) -> None:
    queue.add_after("ns/a", 1.0)

    queue.shut_down()
    queue.add_after("ns/b", 1.0)
    clock.step(5.0)

    assert queue.waiting() == 0
    assert queue.get() == (None, True)
