"""The base work queue: fair, stingy, de-duplicating, safe to share.

Handlers ``add`` keys; workers ``get`` one, reconcile it and call ``done``.
The queue promises, as client-go's ``util/workqueue`` does:

- fair: keys come out in the order they first went in;
- stingy: a key added many times before a worker takes it is processed once,
  and a key is never held by two workers at once; a key added while a worker
  holds it is processed again after that worker calls ``done``;
- many producers and consumers may share one queue;
- clean shutdown: after ``shut_down`` adds are ignored and every blocked
  ``get`` returns; ``shut_down_with_drain`` also waits (bounded) for keys
  already handed out to be ``done``.

The delaying and rate-limiting queues (``delaying.py``, ``rate_limiting.py``)
build on this one. What the queue measures, and how, is ``metrics.py``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from disvc.controller.clock import Clock, RealClock
from disvc.controller.workqueue.metrics import MetricsProvider, NoopMetricsProvider, QueueMetrics

T = TypeVar("T", bound=Hashable)

UNFINISHED_WORK_UPDATE_PERIOD = 0.5
"""Seconds between refreshes of the in-flight work gauges (a stuck worker
shows up as a growing value between reconciles, not only when it ends)."""


class Queue(Generic[T]):
    """A FIFO of distinct keys with the guarantees in the module docstring."""

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock | None = None,
        metrics_provider: MetricsProvider | None = None,
    ) -> None:
        self.name = name
        self.clock: Clock = clock or RealClock()
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[T] = deque()
        """Keys to hand out, in order; every key here is also in ``_dirty``."""
        self._dirty: set[T] = set()
        """Keys that need processing, whether queued or re-added while held."""
        self._processing: set[T] = set()
        """Keys a worker holds; one of these re-added waits here until ``done``."""
        self._shutting_down = False
        self._draining = False
        provider = metrics_provider or NoopMetricsProvider()
        self._metrics: QueueMetrics[T] = QueueMetrics(name, provider, self.clock)
        self._gauges_stopped = threading.Condition(threading.Lock())
        self._gauges_thread: threading.Thread | None = None
        # Only a measured queue pays for the refresher thread.
        if not isinstance(provider, NoopMetricsProvider):
            self._gauges_thread = threading.Thread(
                target=self._refresh_unfinished_work, name=f"workqueue-{name}-gauges", daemon=True
            )
            self._gauges_thread.start()

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing; a no-op if it already does."""
        with self._cond:
            if self._shutting_down or item in self._dirty:
                return
            self._metrics.added(item)
            self._dirty.add(item)
            if item in self._processing:
                return  # ``done`` queues it, keeping it on one worker at a time
            self._queue.append(item)
            self._cond.notify()

    def __len__(self) -> int:
        """Keys waiting to be handed out (not those being processed)."""
        with self._cond:
            return len(self._queue)

    def get(self) -> tuple[T | None, bool]:
        """Block until a key is ready; return ``(key, False)``.

        Returns ``(None, True)`` once the queue is shut down and empty: the
        worker should exit. A key returned must be passed to ``done``.
        """
        with self._cond:
            while not self._queue and not self._shutting_down:
                self._cond.wait()
            if not self._queue:
                return None, True
            item = self._queue.popleft()
            self._metrics.handed_out(item)
            self._processing.add(item)
            self._dirty.discard(item)
            return item, False

    def done(self, item: T) -> None:
        """Release ``item``; if it was re-added meanwhile, queue it again."""
        with self._cond:
            self._metrics.finished(item)
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                self._cond.notify()
            elif not self._processing:
                self._cond.notify_all()  # a drain may be waiting for this

    def shut_down(self) -> None:
        """Ignore further adds and release every blocked ``get``.

        Keys still queued are still handed out; in-flight keys are not waited for.
        """
        with self._cond:
            self._draining = False
            self._shutting_down = True
            self._cond.notify_all()
        self._stop_gauges()

    def shut_down_with_drain(self, timeout: float) -> bool:
        """Shut down, then wait up to ``timeout`` seconds for every key handed
        out to be ``done``. Returns whether the drain finished in time.

        Keys still queued are handed out as with ``shut_down``.
        """
        with self._cond:
            self._draining = True
            self._shutting_down = True
            self._cond.notify_all()
            deadline = self.clock.monotonic() + timeout
            while self._processing and self._draining and self.clock.monotonic() < deadline:
                self.clock.wait_until(self._cond, deadline)
            drained = not self._processing
        self._stop_gauges()
        return drained

    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def update_unfinished_work(self) -> None:
        """Refresh the in-flight gauges now (a thread also does it periodically)."""
        with self._cond:
            self._metrics.update_unfinished_work()

    def _refresh_unfinished_work(self) -> None:
        with self._gauges_stopped:
            while True:
                deadline = self.clock.monotonic() + UNFINISHED_WORK_UPDATE_PERIOD
                while not self.shutting_down() and self.clock.monotonic() < deadline:
                    self.clock.wait_until(self._gauges_stopped, deadline)
                if self.shutting_down():
                    return
                self.update_unfinished_work()

    def _stop_gauges(self) -> None:
        with self._gauges_stopped:
            self._gauges_stopped.notify_all()
