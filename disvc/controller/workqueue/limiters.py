"""Rate limiters: how long a failed key waits before it is tried again.

A ``RateLimiter`` is asked ``when(key)`` each time a key fails and answers a
delay in seconds; ``forget(key)`` is called once the key succeeds so its next
failure starts from the shortest delay again. The controller's default
(``default_controller_rate_limiter``) takes the larger of two answers, as
client-go's default controller limiter does:

- per key, exponential: 5 ms, 10 ms, 20 ms ... capped at 1000 s, so one
  broken object backs off without slowing the others;
- overall, a token bucket (10 per second, bursts of 100), so many keys
  failing together cannot flood the API server.

These limit retries of whole keys by the queue; a single API call's brief
retry (``tenacity``) is a separate, inner layer.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from disvc.controller import backoff
from disvc.controller.clock import Clock, RealClock

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[T_contra]):
    def when(self, item: T_contra) -> float:
        """Seconds ``item`` should wait before its next try; records the try."""

    def forget(self, item: T_contra) -> None:
        """``item`` succeeded (or was given up on): clear its failure history."""

    def num_requeues(self, item: T_contra) -> int:
        """How many times ``item`` has been delayed since it was last forgotten."""


class ItemExponentialFailureRateLimiter(Generic[T]):
    """Delay ``base * 2**failures`` for each key, capped at ``max``."""

    def __init__(self, base: float = 0.005, max: float = 1000.0) -> None:
        self._base = base
        self._max = max
        self._lock = threading.Lock()
        self._failures: dict[T, int] = {}

    def when(self, item: T) -> float:
        with self._lock:
            exponent = self._failures.get(item, 0)
            self._failures[item] = exponent + 1
        return backoff.exponential(exponent, self._base, self._max)

    def forget(self, item: T) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class BucketRateLimiter(Generic[T]):
    """A token bucket shared by all keys: ``burst`` tries at once, then
    ``qps`` per second.

    Like ``golang.org/x/time/rate``'s reservations, a try that finds the
    bucket empty takes a token that will only exist in the future and is
    told how long until then; the bucket can go negative, so each further
    try waits one refill interval longer than the previous one.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock | None = None) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("a bucket needs a positive rate and room for one token")
        self._qps = qps
        self._burst = float(burst)
        self._clock: Clock = clock or RealClock()
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = self._clock.monotonic()

    def when(self, item: T) -> float:
        with self._lock:
            now = self._clock.monotonic()
            elapsed = max(0.0, now - self._last)
            self._tokens = min(self._burst, self._tokens + elapsed * self._qps)
            self._last = max(now, self._last)
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._qps

    def forget(self, item: T) -> None:
        pass  # the bucket has no per-key memory

    def num_requeues(self, item: T) -> int:
        return 0


class MaxOfRateLimiter(Generic[T]):
    """Asks every limiter (so each records the try) and waits the longest."""

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, item: T) -> float:
        return max([limiter.when(item) for limiter in self._limiters])

    def forget(self, item: T) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> MaxOfRateLimiter[T]:
    """Per-key exponential backoff (5 ms to 1000 s) bounded by an overall
    10 per second, burst 100 bucket."""
    per_item: ItemExponentialFailureRateLimiter[T] = ItemExponentialFailureRateLimiter(base=0.005, max=1000.0)
    overall: BucketRateLimiter[T] = BucketRateLimiter(qps=10.0, burst=100, clock=clock)
    return MaxOfRateLimiter(per_item, overall)
