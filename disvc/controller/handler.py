"""Event handlers: map informer events to the queue keys of the DISVCs they concern.

No other logic lives here (as controller-runtime's ``handler`` package): a
DISVC event enqueues the DISVC itself; a child event (ISVC, Service,
Ingress) enqueues the DISVC that controls it, found through the controller
ownerReference of kind DistributedInferenceService and, when there is none
(a foreign object or one created without it), through the ``disvc`` label.
Every event enqueues: a reconcile of converged state is cheap and writes
nothing, so filtering would only add ways to miss a change.
"""

from __future__ import annotations

from typing import Protocol

from disvc.builders import names, ownership
from disvc.builders.types import Obj, ObjectKey
from disvc.controller.store import object_key


class Queue(Protocol):
    def add(self, key: str) -> None: ...


class Tombstone(Protocol):
    """A delete whose final state was missed (the store's ``DeletedFinalStateUnknown``)."""

    @property
    def key(self) -> str: ...

    @property
    def obj(self) -> Obj: ...


def _last_state(obj: Obj | Tombstone) -> Obj:
    return obj if isinstance(obj, dict) else obj.obj


def owner_key(obj: Obj) -> str | None:
    """The key of the DISVC a child belongs to, or None if it names none."""
    meta = obj.get("metadata") or {}
    ref = ownership.controlling_disvc(obj)
    name = (ref.get("name") if ref is not None else None) or (meta.get("labels") or {}).get(names.DISVC_LABEL)
    return str(ObjectKey(meta.get("namespace", ""), name)) if name else None


class EnqueueDisvc:
    """For the DISVC informer: every event enqueues the DISVC's own key."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def on_add(self, obj: Obj) -> None:
        self._queue.add(object_key(obj))

    def on_update(self, old: Obj, new: Obj) -> None:
        self._queue.add(object_key(new))

    def on_delete(self, obj: Obj | Tombstone) -> None:
        self._queue.add(object_key(_last_state(obj)))


class EnqueueOwner:
    """For child informers: every event enqueues the owning DISVC's key."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def on_add(self, obj: Obj) -> None:
        self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        new_key = self._enqueue(new)
        # Owner changed (adopted, orphaned, relabelled): the old owner must
        # learn it lost a child too.
        old_key = owner_key(old)
        if old_key is not None and old_key != new_key:
            self._queue.add(old_key)

    def on_delete(self, obj: Obj | Tombstone) -> None:
        self._enqueue(_last_state(obj))

    def _enqueue(self, obj: Obj) -> str | None:
        key = owner_key(obj)
        if key is not None:
            self._queue.add(key)
        return key
