"""The controller's work queue, in four layers as client-go's ``util/workqueue``.

``Queue`` (fair, stingy, de-duplicating) → ``DelayingQueue`` (``add_after``)
→ ``RateLimitingQueue`` (``add_rate_limited`` through a ``RateLimiter``).
Time comes from an injected ``Clock`` and measurements go to an injected
``MetricsProvider``, so this package needs only the standard library and its
tests step a fake clock instead of sleeping.
"""

from disvc.controller.workqueue.clock import Clock, FakeClock, RealClock
from disvc.controller.workqueue.delaying import DelayingQueue
from disvc.controller.workqueue.limiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from disvc.controller.workqueue.queue import MetricsProvider, NoopMetricsProvider, Queue
from disvc.controller.workqueue.rate_limiting import RateLimitingQueue

__all__ = [
    "BucketRateLimiter",
    "Clock",
    "DelayingQueue",
    "FakeClock",
    "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter",
    "MetricsProvider",
    "NoopMetricsProvider",
    "Queue",
    "RateLimiter",
    "RateLimitingQueue",
    "RealClock",
    "default_controller_rate_limiter",
]
