"""Our own writes, seen by the next reconcile before their watch events arrive.

A write returns the object as the API server stored it, but the informer's
store learns of it only when its watch event arrives, a moment later. A
reconcile that ran in between on the store alone would see the world before
our write and repeat it. As client-go's ``tools/cache/mutation_cache.go``,
``MutationCache`` keeps the objects our writes returned (and the objects we
deleted) beside the store, which stays exactly what the watch delivered, and
reads prefer them until the store has caught up:

- a written object is served until the store reaches its resourceVersion
  (resourceVersions are etcd revisions, compared as integers; when they are
  not integers, until the next event for that object);
- a deleted object is hidden until its watch event removes it, or a newer
  version (a finalizer's ``deletionTimestamp``) shows it still exists.

It also answers the informer's question "is this watch event the echo of our
own write?" (``observed``): the event of exactly the version a write of ours
returned. The reconcile that wrote it already knew that state, so the event
is not news and enqueues nothing. Any other event is news, including one
overtaken by a newer write of ours that already contains it: the reconcile
that wrote may have read the state before that change, so it must look again
(and it reads our newer object here). The controller never waits on the
echo of its own write for anything else: a reconcile whose writes leave more
to do says so with a requeue.
"""

from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass

from disvc.builders.types import Obj
from disvc.controller.store import Store, object_key, resource_version


def is_newer(candidate: str, current: str) -> bool | None:
    """Whether resourceVersion ``candidate`` is later than ``current``; None
    when that cannot be told (they are opaque by contract, and only integers
    in practice)."""
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return None


def _caught_up(store_version: str, written: str) -> bool:
    """Whether a store at ``store_version`` has seen the write at ``written``."""
    return store_version == written or is_newer(store_version, written) is True


@dataclass(frozen=True, slots=True)
class _Deleted:
    resource_version: str
    """The version we deleted (our delete's precondition); "" when unknown."""


class MutationCache:
    """Reads of one kind: our recent writes over the informer's ``Store``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._pending: dict[str, Obj | _Deleted] = {}
        """key -> what our last write left there, until the store catches up."""
        self._swept_at = 0
        """How many entries the last sweep left; the next comes at twice that."""

    # -- recording our writes ------------------------------------------------

    def mutation(self, obj: Obj) -> None:
        """Record the object one of our writes returned."""
        stored = self._store.transform(obj)
        version = resource_version(stored)
        with self._lock:
            if _caught_up(self._store.resource_version, version):
                return  # its watch event got here first
            self._pending[object_key(stored)] = stored
            self._sweep_if_grown()

    def deletion(self, key: str, version: str | None) -> None:
        """Record that we deleted the object at ``key`` (at ``version``)."""
        with self._lock:
            self._pending[key] = _Deleted(version or "")
            self._sweep_if_grown()

    # -- reads -----------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._resolve(key)

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        """The store's index, with our writes in place of what they replaced."""
        index_func = self._store.indexers[index]
        with self._lock:
            keys = set(self._store.index_keys(index, value))
            keys.update(k for k, p in self._pending.items() if isinstance(p, dict) and value in index_func(p))
            found = []
            for k in sorted(keys):
                obj = self._resolve(k)
                if obj is not None and (k not in self._pending or value in index_func(obj)):
                    found.append(obj)
            return found

    def _resolve(self, key: str) -> Obj | None:
        pending = self._pending.get(key)
        # One read of both: an event applied between reading the object and
        # reading the store's version would make a store that has just
        # caught up with our write look caught up while still showing the
        # object before it (a created child read as missing, an older one).
        stored, store_version = self._store.get_at(key)
        if pending is None:
            return stored
        if isinstance(pending, _Deleted):
            if stored is not None and is_newer(resource_version(stored), pending.resource_version) is True:
                return stored  # still there, changed since we deleted it (a finalizer holds it)
            return None
        if _caught_up(store_version, resource_version(pending)):
            return stored
        return pending

    # -- what the informer tells us ------------------------------------------

    def observed(self, obj: Obj) -> bool:
        """The store applied ``obj`` (added or modified); True when it is the
        echo of our own write (see the module docstring)."""
        key, version = object_key(obj), resource_version(obj)
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                return False
            if isinstance(pending, _Deleted):
                if is_newer(version, pending.resource_version) is not False:
                    del self._pending[key]
                return False
            written = resource_version(pending)
            if version == written:
                del self._pending[key]
                return True
            if is_newer(version, written) is not False:
                del self._pending[key]  # a later change, or one we cannot order: the store wins
            return False

    def observed_delete(self, key: str) -> None:
        """The store removed ``key`` (a delete event, or gone from a relist)."""
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                return
            if isinstance(pending, _Deleted) or _caught_up(self._store.resource_version, resource_version(pending)):
                del self._pending[key]

    def __len__(self) -> int:
        """Writes still ahead of the store."""
        with self._lock:
            return len(self._pending)

    def _sweep_if_grown(self) -> None:
        # Entries normally leave through ``observed``; those whose events will
        # never come (the object left the watch, a relist went past them) are
        # swept once the store has caught up, at amortised constant cost.
        if len(self._pending) <= max(64, 2 * self._swept_at):
            return
        version = self._store.resource_version
        for key, pending in builtins.list(self._pending.items()):
            if isinstance(pending, _Deleted):
                if self._store.get(key) is None:
                    del self._pending[key]
            elif _caught_up(version, resource_version(pending)):
                del self._pending[key]
        self._swept_at = len(self._pending)
