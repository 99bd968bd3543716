"""The controller records Kubernetes Events about DISVCs, without ever slowing a reconcile.

The builders decide which Events a reconcile produces (``builders.events``);
this module writes them.

``kubectl describe disvc`` shows the Events whose ``involvedObject`` is the
DISVC; they tell a user what the controller did (a rollout started) or why it
refuses (a foreign object holds a child's name). Events are best effort, as in
client-go's ``record`` package: ``emit`` only enqueues into a bounded queue; a
background thread writes core/v1 Events. When the queue is full the event is
dropped and counted, because blocking a reconcile on an Event write would let
a slow API server stall the controller's real work.

Repeats of the same (object, type, reason, message) within
``aggregation_window`` are aggregated as client-go's ``EventCorrelator`` does:
the first Event's ``count`` and ``lastTimestamp`` are updated with a merge
patch (``Kube.patch_event``) instead of creating another Event; if that Event
expired meanwhile, a new one is created. A sink that can only create (a test
double) has repeats within the window not written at all. Events describe
changes only: the builders return none for a converged reconcile, so a steady
state writes nothing here.
"""

from __future__ import annotations

import itertools
import queue
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

import structlog

from disvc.builders.types import EventSpec, Obj
from disvc.controller import errors
from disvc.controller.clock import Clock, RealClock, rfc3339

log = structlog.get_logger(__name__)

COMPONENT: Final = "disvc-controller"
"""``source.component`` and ``reportingComponent`` of every Event we write."""

DEFAULT_CAPACITY: Final = 1000
AGGREGATION_WINDOW: Final = 600.0
"""Seconds during which a repeat folds into the earlier Event (client-go: 10 min)."""
MAX_REMEMBERED: Final = 4096
"""Distinct recent Events remembered for aggregation (an LRU, as client-go's cache)."""


class EventSink(Protocol):
    """Where Events go: ``Kube`` in the controller, a list in tests."""

    def create_event(self, event: Obj) -> Obj: ...


@runtime_checkable
class PatchingEventSink(Protocol):
    """A sink that can also update an Event's count in place."""

    def create_event(self, event: Obj) -> Obj: ...

    def patch_event(self, namespace: str, name: str, patch: Obj) -> Obj: ...


@dataclass(slots=True)
class _Recent:
    """What we last wrote for one (object, type, reason, message)."""

    name: str
    namespace: str
    count: int
    first_timestamp: str
    written_at: float


_AggregationKey = tuple[str, str, str, str, str, str]
"""(namespace, object uid or name, kind, type, reason, message)."""


class EventRecorder:
    """Writes Events from a background thread; ``emit`` never blocks.

    ``start`` launches the writer thread; ``stop`` writes what is queued (up
    to ``timeout``) and ends it. Events emitted before ``start`` wait in the
    queue.
    """

    def __init__(
        self,
        sink: EventSink,
        *,
        capacity: int = DEFAULT_CAPACITY,
        aggregation_window: float = AGGREGATION_WINDOW,
        instance: str | None = None,
        clock: Clock | None = None,
        on_drop: Callable[[], None] | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        """``on_drop`` is called (on the emitting thread) for every Event the
        full queue refuses; the manager counts them in
        ``disvc_events_dropped_total``."""
        self._sink = sink
        self._patcher = sink if isinstance(sink, PatchingEventSink) else None
        # None is the stop marker; it is queued after everything emitted before stop.
        self._queue: queue.Queue[tuple[Obj, EventSpec] | None] = queue.Queue(maxsize=capacity)
        self._window = aggregation_window
        self._instance = instance or socket.gethostname()
        self._clock: Clock = clock or RealClock()
        self._on_drop = on_drop
        self._may_write = may_write
        """Asked before each write (leader election's gate); no: the Event is dropped."""
        self._recent: OrderedDict[_AggregationKey, _Recent] = OrderedDict()
        self._serial = itertools.count()
        self._thread = threading.Thread(target=self._drain, name="event-recorder", daemon=True)
        self.dropped = 0
        """Events lost because the queue was full."""
        self.failed = 0
        """Events the API refused or that could not be sent."""

    # -- the reconcile side --------------------------------------------------

    def emit(self, regarding: Obj, event: EventSpec) -> None:
        """Queue ``event`` about ``regarding``; drop it (and count) when the queue is full."""
        try:
            self._queue.put_nowait((regarding, event))
        except queue.Full:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
            log.warning("Dropped event, queue full", reason=event.reason)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> EventRecorder:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Write what is already queued, then end the writer thread; True if
        it ended within ``timeout``."""
        if not self._thread.is_alive():
            return True
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass  # the thread is stuck on the API; it is a daemon and dies with us
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the writer thread ---------------------------------------------------

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            regarding, event = item
            try:
                self._record(regarding, event)
            except errors.ControllerError as exc:
                self.failed += 1
                log.warning("Failed to record event", reason=event.reason, error=str(exc))
            except Exception:
                # Never let one bad Event end the thread that writes all the others.
                self.failed += 1
                log.exception("Failed to record event", reason=event.reason)

    def _record(self, regarding: Obj, event: EventSpec) -> None:
        if self._may_write is not None and not self._may_write():
            self.failed += 1
            log.info("Event not written: this replica may no longer lead", reason=event.reason)
            return
        meta = regarding.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        key: _AggregationKey = (
            namespace, meta.get("uid") or meta.get("name", ""), regarding.get("kind", ""),
            event.type, event.reason, event.message,
        )
        now = self._clock.now()
        recent = self._recent.get(key)
        fresh = recent is not None and self._clock.monotonic() - recent.written_at < self._window
        if fresh and recent is not None and self._repeat(recent, now):
            self._recent.move_to_end(key)
            return
        created = self._sink.create_event(self._new_event(regarding, namespace, event, now))
        self._remember(key, _Recent(
            name=created.get("metadata", {}).get("name", ""), namespace=namespace, count=1,
            first_timestamp=rfc3339(now), written_at=self._clock.monotonic(),
        ))

    def _repeat(self, recent: _Recent, now: datetime) -> bool:
        """Fold a repeat into the earlier Event; False when a new Event is needed."""
        if self._patcher is None:
            recent.count += 1
            return True  # create-only: the earlier Event stands for this one
        try:
            self._patcher.patch_event(
                recent.namespace, recent.name, {"count": recent.count + 1, "lastTimestamp": rfc3339(now)}
            )
        except errors.NotFoundError:
            return False  # the API expired the earlier Event (TTL)
        recent.count += 1
        return True

    def _remember(self, key: _AggregationKey, recent: _Recent) -> None:
        self._recent[key] = recent
        self._recent.move_to_end(key)
        # Past the window an entry can only lead to a new Event, never fold a
        # repeat: dropping it keeps what is held proportional to the recent
        # Event rate (DISVCs long deleted leave nothing), under the cap.
        while self._recent:
            oldest = next(iter(self._recent.values()))
            if len(self._recent) <= MAX_REMEMBERED and recent.written_at - oldest.written_at < self._window:
                break
            self._recent.popitem(last=False)

    @property
    def remembered(self) -> int:
        """Recent Events held for aggregation."""
        return len(self._recent)

    def _new_event(self, regarding: Obj, namespace: str, event: EventSpec, now: datetime) -> Obj:
        meta = regarding.get("metadata") or {}
        name = meta.get("name", "unknown")
        timestamp = rfc3339(now)
        involved: Obj = {
            "apiVersion": regarding.get("apiVersion", ""),
            "kind": regarding.get("kind", ""),
            "namespace": namespace,
            "name": name,
        }
        for source, target in (("uid", "uid"), ("resourceVersion", "resourceVersion")):
            if meta.get(source):
                involved[target] = meta[source]
        # Unique per process: the time in ns plus a serial, as client-go's "<name>.<hex ns>".
        suffix = f"{time.time_ns():x}{next(self._serial):x}"
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{suffix}", "namespace": namespace},
            "involvedObject": involved,
            "type": event.type,
            "reason": event.reason,
            "message": event.message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        }
