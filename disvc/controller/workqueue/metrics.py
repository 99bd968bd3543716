"""What the workqueue measures, as client-go's ``util/workqueue/metrics.go``.

The queue reports through a ``MetricsProvider`` that makes one instrument
per measurement for a named queue; the default provider records nothing, so
a queue nobody asked to measure costs nothing and this package needs only
the standard library. ``disvc.controller.metrics`` supplies the Prometheus
provider (the ``workqueue_*`` families). ``QueueMetrics`` keeps the
timestamps the durations are computed from.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from disvc.controller.clock import Clock

T = TypeVar("T", bound=Hashable)


class CounterMetric(Protocol):
    def inc(self) -> None: ...


class GaugeMetric(Protocol):
    def inc(self) -> None: ...

    def dec(self) -> None: ...


class SettableGaugeMetric(Protocol):
    def set(self, value: float) -> None: ...


class HistogramMetric(Protocol):
    def observe(self, value: float) -> None: ...


class MetricsProvider(Protocol):
    """Makes the instruments of the queue called ``name``."""

    def depth(self, name: str) -> GaugeMetric:
        """Keys waiting to be handed to a worker."""

    def adds(self, name: str) -> CounterMetric:
        """Adds that put a key into the queue (de-duplicated adds do not count)."""

    def latency(self, name: str) -> HistogramMetric:
        """Seconds a key waited between being added and being handed out."""

    def work_duration(self, name: str) -> HistogramMetric:
        """Seconds between handing a key out and its ``done``."""

    def unfinished_work_seconds(self, name: str) -> SettableGaugeMetric:
        """Sum of the seconds every in-flight key has been processed so far."""

    def longest_running_processor_seconds(self, name: str) -> SettableGaugeMetric:
        """Seconds the oldest in-flight key has been processed so far."""

    def retries(self, name: str) -> CounterMetric:
        """Delayed re-adds (``add_after``), counted by the delaying queue."""


class _Discard:
    """Every instrument at once, recording nothing."""

    def inc(self) -> None:
        pass

    def dec(self) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


class NoopMetricsProvider:
    """The default provider: a queue nobody asked to measure costs nothing."""

    _discard = _Discard()

    def depth(self, name: str) -> GaugeMetric:
        return self._discard

    def adds(self, name: str) -> CounterMetric:
        return self._discard

    def latency(self, name: str) -> HistogramMetric:
        return self._discard

    def work_duration(self, name: str) -> HistogramMetric:
        return self._discard

    def unfinished_work_seconds(self, name: str) -> SettableGaugeMetric:
        return self._discard

    def longest_running_processor_seconds(self, name: str) -> SettableGaugeMetric:
        return self._discard

    def retries(self, name: str) -> CounterMetric:
        return self._discard


class QueueMetrics(Generic[T]):
    """The queue's instruments plus the timestamps they are computed from.

    Called only with the queue's lock held, so it keeps no lock of its own.
    """

    def __init__(self, name: str, provider: MetricsProvider, clock: Clock) -> None:
        self._clock = clock
        self._depth = provider.depth(name)
        self._adds = provider.adds(name)
        self._latency = provider.latency(name)
        self._work_duration = provider.work_duration(name)
        self._unfinished = provider.unfinished_work_seconds(name)
        self._longest = provider.longest_running_processor_seconds(name)
        self._added_at: dict[T, float] = {}
        self._processing_since: dict[T, float] = {}

    def added(self, item: T) -> None:
        self._adds.inc()
        self._depth.inc()
        # The first add starts the wait; a re-add while processing keeps it.
        self._added_at.setdefault(item, self._clock.monotonic())

    def handed_out(self, item: T) -> None:
        now = self._clock.monotonic()
        self._depth.dec()
        self._processing_since[item] = now
        added_at = self._added_at.pop(item, None)
        if added_at is not None:
            self._latency.observe(now - added_at)

    def finished(self, item: T) -> None:
        started = self._processing_since.pop(item, None)
        if started is not None:
            self._work_duration.observe(self._clock.monotonic() - started)

    def update_unfinished_work(self) -> None:
        now = self._clock.monotonic()
        ages = [now - started for started in self._processing_since.values()]
        self._unfinished.set(sum(ages))
        self._longest.set(max(ages, default=0.0))
