"""Reaction time: from the watch event that brought a key to the first write it caused.

What a user feels of the controller's speed is how long a change waits before
the controller acts on it: a DISVC edited, a child deleted, an ISVC turning
Ready. That is measured here, end to end through the queue and the
reconcile, from the moment a handler enqueues a DISVC's key for an event to
the first API write of the reconcile that takes the key:

- ``Reaction.watching(queue)`` wraps the queue the handlers add to; the first
  add of a key since its last reconcile began notes the time (later events
  for the same key fold into that reconcile, as they do in the queue);
- ``Reaction.reconciling(reconciler)`` wraps the reconciler, so each
  reconcile claims the time noted for its key;
- the client calls ``wrote()`` for each write it sends; the first one in a
  reconcile observes the seconds since the event.

A reconcile that writes nothing reacted to nothing a user waits for (an echo
of our own write, a resync) and records nothing. One that fails before
writing hands its event time on to the retry, so a backoff counts. Writes
made off a reconcile's thread (Events, the leader Lease) are not reactions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from disvc.builders.types import ObjectKey
from disvc.controller.reconcile import Reconciler, Result


class Queue(Protocol):
    def add(self, key: str) -> None: ...


class Reaction:
    """Event times per key, and the first write of each reconcile."""

    def __init__(self, observe: Callable[[float], None], clock: Callable[[], float] = time.monotonic) -> None:
        self._observe = observe
        self._clock = clock
        self._noticed: dict[str, float] = {}
        """key -> when its oldest event not yet taken by a reconcile arrived."""
        self._lock = threading.Lock()
        self._current = threading.local()
        """``since``: the event time the running reconcile on this thread has
        still to report (None once reported, or if it had none)."""

    def watching(self, queue: Queue) -> Queue:
        """``queue``, noting when each key's first pending event arrived."""
        return _NotingQueue(self, queue)

    def reconciling(self, reconciler: Reconciler) -> Reconciler:
        """``reconciler``, claiming each key's event time for its reconcile."""
        return _TimedReconciler(self, reconciler)

    def wrote(self) -> None:
        """A write request is being sent (the client's hook)."""
        since = getattr(self._current, "since", None)
        if since is not None:
            self._current.since = None
            self._observe(max(0.0, self._clock() - since))

    def pending(self) -> int:
        """Keys with an event not yet taken by a reconcile."""
        with self._lock:
            return len(self._noticed)

    def _notice(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            self._noticed.setdefault(key, now)

    def _begin(self, key: str) -> None:
        with self._lock:
            self._current.since = self._noticed.pop(key, None)

    def _end(self, key: str, failed: bool) -> None:
        since = self._current.since
        self._current.since = None
        if failed and since is not None:
            with self._lock:
                # The retry reacts to the same event; keep the older time if
                # another event came meanwhile.
                self._noticed[key] = min(since, self._noticed.get(key, since))


class _NotingQueue:
    def __init__(self, reaction: Reaction, queue: Queue) -> None:
        self._reaction = reaction
        self._queue = queue

    def add(self, key: str) -> None:
        self._reaction._notice(key)
        self._queue.add(key)


class _TimedReconciler:
    def __init__(self, reaction: Reaction, reconciler: Reconciler) -> None:
        self._reaction = reaction
        self._reconciler = reconciler

    def reconcile(self, key: ObjectKey) -> Result:
        name = str(key)
        self._reaction._begin(name)
        failed = True
        try:
            result = self._reconciler.reconcile(key)
            failed = False
            return result
        finally:
            self._reaction._end(name, failed)
