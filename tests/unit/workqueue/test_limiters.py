"""Backoff per key, a token bucket overall, and the larger of the two."""

from __future__ import annotations

import pytest

from disvc.controller.clock import FakeClock
from disvc.controller.workqueue.limiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)


def test_exponential_backoff_doubles_from_5ms_per_failure() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()

    delays = [limiter.when("ns/a") for _ in range(5)]

    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert limiter.num_requeues("ns/a") == 5


def test_exponential_backoff_stops_at_its_cap() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(base=1.0, max=8.0)

    assert [limiter.when("ns/a") for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_exponential_backoff_stays_capped_after_years_of_failures() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    for _ in range(2000):
        delay = limiter.when("ns/a")

    assert delay == 1000.0


def test_exponential_backoff_is_per_key_and_forget_resets_it() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    limiter.when("ns/a")
    limiter.when("ns/a")

    assert limiter.when("ns/b") == pytest.approx(0.005)
    limiter.forget("ns/a")
    assert limiter.num_requeues("ns/a") == 0
    assert limiter.when("ns/a") == pytest.approx(0.005)


def test_bucket_lets_a_burst_through_then_spaces_tries_at_its_rate() -> None:
    limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=100, clock=FakeClock())

    burst = [limiter.when(f"ns/k{i}") for i in range(100)]
    after = [limiter.when(f"ns/k{i}") for i in range(100, 103)]

    assert burst == [0.0] * 100
    assert after == pytest.approx([0.1, 0.2, 0.3])


def test_bucket_refills_with_time() -> None:
    clock = FakeClock()
    limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=5, clock=clock)
    for i in range(5):
        limiter.when(f"ns/k{i}")

    clock.step(0.3)

    assert [limiter.when("ns/x") for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])


def test_bucket_never_holds_more_than_its_burst() -> None:
    clock = FakeClock()
    limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=2, clock=clock)

    clock.step(3600.0)

    assert [limiter.when("ns/x") for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_bucket_keeps_no_per_key_history() -> None:
    limiter: BucketRateLimiter[str] = BucketRateLimiter(clock=FakeClock())
    limiter.when("ns/a")
    limiter.forget("ns/a")

    assert limiter.num_requeues("ns/a") == 0


def test_max_of_waits_the_longest_and_forgets_everywhere() -> None:
    slow: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(base=1.0, max=100.0)
    fast: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(base=0.5, max=100.0)
    limiter = MaxOfRateLimiter(fast, slow)

    assert [limiter.when("ns/a") for _ in range(3)] == [1.0, 2.0, 4.0]
    assert limiter.num_requeues("ns/a") == 3

    limiter.forget("ns/a")

    assert slow.num_requeues("ns/a") == 0
    assert fast.num_requeues("ns/a") == 0
    assert limiter.when("ns/a") == 1.0


def test_default_controller_limiter_backs_off_per_key_within_an_overall_budget() -> None:
    limiter: MaxOfRateLimiter[str] = default_controller_rate_limiter(FakeClock())

    assert [limiter.when("ns/a") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    # 3 tokens spent above; the rest of the burst, then the bucket dominates.
    fresh = [limiter.when(f"ns/k{i}") for i in range(98)]
    assert fresh == pytest.approx([0.005] * 97 + [0.1])
