"""A work queue that can also add a key later: ``add_after(key, seconds)``.

This is how a reconcile says "look again in a while" and how backoff
delays a failed key. Delayed keys wait in a heap ordered by ready time; one
waiter thread sleeps until the earliest is due and moves it into the base
``Queue``, which still de-duplicates and keeps a key on one worker at a time.
A key delayed twice keeps the earlier ready time, so a short recheck is
never postponed by a longer one.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass, field
from typing import Generic

from disvc.controller.clock import Clock
from disvc.controller.workqueue.metrics import MetricsProvider, NoopMetricsProvider
from disvc.controller.workqueue.queue import Queue, T


@dataclass(order=True, slots=True)
class _Waiting(Generic[T]):
    ready_at: float
    sequence: int
    """Breaks ties between equal ready times in the order they were added."""
    item: T = field(compare=False)
    removed: bool = field(default=False, compare=False)
    """Superseded by an earlier ready time for the same key; skip when popped."""


class DelayingQueue(Queue[T]):
    """``Queue`` plus ``add_after``; see the module docstring."""

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock | None = None,
        metrics_provider: MetricsProvider | None = None,
    ) -> None:
        super().__init__(name, clock=clock, metrics_provider=metrics_provider)
        self._retries = (metrics_provider or NoopMetricsProvider()).retries(name)
        self._waiting_cond = threading.Condition(threading.Lock())
        self._heap: list[_Waiting[T]] = []
        self._waiting_by_item: dict[T, _Waiting[T]] = {}
        self._sequence = itertools.count()
        self._stopped = False
        self._waiter = threading.Thread(target=self._wait_loop, name=f"workqueue-{name}-delay", daemon=True)
        self._waiter.start()

    def add_after(self, item: T, seconds: float) -> None:
        """Add ``item`` once ``seconds`` have passed (at once if ``seconds <= 0``).

        If ``item`` is already waiting, the earlier of the two ready times wins.
        """
        if self.shutting_down():
            return
        self._retries.inc()
        if seconds <= 0:
            self.add(item)
            return
        with self._waiting_cond:
            ready_at = self.clock.monotonic() + seconds
            existing = self._waiting_by_item.get(item)
            if existing is not None:
                if existing.ready_at <= ready_at:
                    return
                existing.removed = True
            entry = _Waiting(ready_at, next(self._sequence), item)
            heapq.heappush(self._heap, entry)
            self._waiting_by_item[item] = entry
            # Only a new earliest deadline changes how long the waiter sleeps.
            if self._heap[0] is entry:
                self._waiting_cond.notify()

    def waiting(self) -> int:
        """Keys waiting for their ready time (not yet in the queue)."""
        with self._waiting_cond:
            return len(self._waiting_by_item)

    def shut_down(self) -> None:
        super().shut_down()
        self._stop_waiter()

    def shut_down_with_drain(self, timeout: float) -> bool:
        # Delayed keys would be dropped by the shut-down queue anyway.
        self._stop_waiter()
        return super().shut_down_with_drain(timeout)

    def _stop_waiter(self) -> None:
        with self._waiting_cond:
            self._stopped = True
            self._heap.clear()
            self._waiting_by_item.clear()
            self._waiting_cond.notify_all()

    def _wait_loop(self) -> None:
        with self._waiting_cond:
            while not self._stopped:
                now = self.clock.monotonic()
                while self._heap and self._heap[0].ready_at <= now:
                    entry = heapq.heappop(self._heap)
                    if entry.removed:
                        continue
                    del self._waiting_by_item[entry.item]
                    # Lock order is always waiting lock, then queue lock.
                    self.add(entry.item)
                deadline = self._heap[0].ready_at if self._heap else None
                self.clock.wait_until(self._waiting_cond, deadline)
