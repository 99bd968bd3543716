"""``add_rate_limited`` delays a key as long as its limiter says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from disvc.controller.clock import FakeClock
from disvc.controller.workqueue.limiters import ItemExponentialFailureRateLimiter
from disvc.controller.workqueue.rate_limiting import RateLimitingQueue
from disvc.testing.fixtures import eventually


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> Iterator[RateLimitingQueue[str]]:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(base=1.0, max=60.0)
    queue = RateLimitingQueue(limiter, "test", clock=clock)
    yield queue
    queue.shut_down()


def _ready(queue: RateLimitingQueue[str], count: int) -> None:
    assert len(queue) == count


def test_each_failure_delays_the_key_longer(clock: FakeClock, queue: RateLimitingQueue[str]) -> None:
    queue.add_rate_limited("ns/a")
    clock.step(1.0)
    eventually(lambda: _ready(queue, 1))
    queue.get()
    queue.done("ns/a")

    queue.add_rate_limited("ns/a")
    clock.step(1.0)
    assert len(queue) == 0
    assert queue.waiting() == 1
    clock.step(1.0)

    eventually(lambda: _ready(queue, 1))
    assert queue.num_requeues("ns/a") == 2


def test_forget_starts_the_next_failure_from_the_shortest_delay(
    clock: FakeClock, queue: RateLimitingQueue[str]
) -> None:
    queue.add_rate_limited("ns/a")
    queue.add_rate_limited("ns/a")
    assert queue.num_requeues("ns/a") == 2
    clock.step(1.0)
    eventually(lambda: _ready(queue, 1))
    queue.get()
    queue.done("ns/a")

    queue.forget("ns/a")
    queue.add_rate_limited("ns/a")
    clock.step(1.0)

    # Without forget this third failure would wait 4 s.
    eventually(lambda: _ready(queue, 1))
    assert queue.num_requeues("ns/a") == 1
