"""The controller's work queue, in four layers as client-go's ``util/workqueue``.

``Queue`` (fair, stingy, de-duplicating) → ``DelayingQueue`` (``add_after``)
→ ``RateLimitingQueue`` (``add_rate_limited`` through a ``RateLimiter``).
Time comes from an injected ``disvc.controller.clock.Clock`` and
measurements go to an injected ``MetricsProvider`` (``metrics.py``), so this
package needs only the standard library and its tests step a fake clock
instead of sleeping.
"""

from disvc.controller.workqueue.delaying import DelayingQueue
from disvc.controller.workqueue.limiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from disvc.controller.workqueue.metrics import MetricsProvider, NoopMetricsProvider
from disvc.controller.workqueue.queue import Queue
from disvc.controller.workqueue.rate_limiting import RateLimitingQueue

__all__ = [
    "BucketRateLimiter",
    "DelayingQueue",
    "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter",
    "MetricsProvider",
    "NoopMetricsProvider",
    "Queue",
    "RateLimiter",
    "RateLimitingQueue",
    "default_controller_rate_limiter",
]
