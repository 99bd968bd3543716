"""The queue workers use: a delaying queue that backs a failing key off.

``add_rate_limited`` asks the ``RateLimiter`` how long the key should wait
and delays it that long; ``forget`` clears the key's failure history once it
succeeds. Everything else is the ``DelayingQueue`` below it.
"""

from __future__ import annotations

from disvc.controller.clock import Clock
from disvc.controller.workqueue.delaying import DelayingQueue
from disvc.controller.workqueue.limiters import RateLimiter
from disvc.controller.workqueue.metrics import MetricsProvider
from disvc.controller.workqueue.queue import T


class RateLimitingQueue(DelayingQueue[T]):
    def __init__(
        self,
        rate_limiter: RateLimiter[T],
        name: str = "",
        *,
        clock: Clock | None = None,
        metrics_provider: MetricsProvider | None = None,
    ) -> None:
        super().__init__(name, clock=clock, metrics_provider=metrics_provider)
        self.rate_limiter = rate_limiter

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay its failure history calls for."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Stop tracking ``item``'s failures; it stays queued if it is queued."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)
