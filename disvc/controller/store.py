"""The informer's store: what the API server holds, keyed ``namespace/name``, with named indexes.

The reflector keeps a ``Store`` equal to the API server's state for one kind
(a list, then each watch event in order); nothing else writes to it, so it
never runs ahead of the watch. Our own writes, which a reconcile must see
before their watch events arrive, are layered on top by
``mutation_cache.MutationCache`` without changing what is stored here.

As client-go's ``NewIndexer`` with a transform, the caller supplies:

- ``indexers``: named functions from an object to the values it is filed
  under, so "which objects have value v" needs no scan;
- ``transform``: applied to every object before it is stored (the
  controller's strips ``managedFields`` and shares strings, ``compact.py``).

Stored objects are shared with readers and must not be mutated.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from disvc.builders.types import Obj, ObjectKey

IndexFunc: TypeAlias = Callable[[Obj], list[str]]
"""Maps an object to the index values it is filed under (none, one or many)."""
Transform: TypeAlias = Callable[[Obj], Obj]
"""Makes the copy of an object that is stored; must not mutate its argument."""


def object_key(obj: Obj) -> str:
    """``namespace/name`` (client-go's ``MetaNamespaceKeyFunc``), formatted by
    ``ObjectKey`` as every key of caches, queues and logs is."""
    return str(ObjectKey.of(obj))


def resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A tombstone: ``obj`` vanished while the watch was down, found by a relist.

    Its final state (and any changes before the delete) were never seen;
    ``obj`` is the last state the store held.
    """

    key: str
    obj: Obj


@dataclass(frozen=True, slots=True)
class Changes:
    """What ``replace`` changed, for the informer to tell its handlers."""

    added: list[Obj] = field(default_factory=list)
    updated: list[tuple[Obj, Obj]] = field(default_factory=list)
    """(old, new) pairs, including objects that did not change."""
    deleted: list[Obj] = field(default_factory=list)
    """The last known state of objects the list no longer holds."""


def _unchanged(obj: Obj) -> Obj:
    return obj


class Store:
    """A thread-safe keyed store of raw objects with named indexes."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None, transform: Transform | None = None) -> None:
        self._lock = threading.RLock()
        self._items: dict[str, Obj] = {}
        self.indexers: Mapping[str, IndexFunc] = dict(indexers or {})
        self.transform: Transform = transform or _unchanged
        self._indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self.indexers}
        self._resource_version = ""

    @property
    def resource_version(self) -> str:
        """The version the store is at: that of the last list or watch event applied."""
        with self._lock:
            return self._resource_version

    def put(self, obj: Obj) -> tuple[Obj | None, Obj]:
        """Apply an added or modified object; returns (previous, stored copy)."""
        stored = self.transform(obj)
        with self._lock:
            old = self._store(object_key(stored), stored)
            self._advance(stored)
            return old, stored

    def delete(self, obj: Obj) -> Obj | None:
        """Apply a deletion; returns the last stored state, if any."""
        with self._lock:
            old = self._remove(object_key(obj))
            self._advance(obj)
            return old

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def get_at(self, key: str) -> tuple[Obj | None, str]:
        """``key``'s object and the store's resourceVersion, read together: no
        event can be applied between the two (``MutationCache`` needs both
        from one moment to tell whether the store has seen a write)."""
        with self._lock:
            return self._items.get(key), self._resource_version

    def list(self) -> list[Obj]:
        with self._lock:
            return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def index_keys(self, index: str, value: str) -> builtins.list[str]:
        """Keys of the objects filed under ``value`` in the named index, sorted."""
        with self._lock:
            return sorted(self._indexes[index].get(value, ()))

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        """Objects filed under ``value`` in the named index."""
        with self._lock:
            return [self._items[k] for k in self.index_keys(index, value)]

    def replace(self, items: builtins.list[Obj], resource_version: str, *, transformed: bool = False) -> Changes:
        """Make the store hold exactly ``items`` (a fresh list) and report the difference.

        ``items`` is consumed: each element is swapped for its stored copy as
        it is transformed, so a relist of thousands of objects never holds
        the decoded originals and the stored copies at once. ``transformed``
        says the lister already applied ``transform`` to each item as it
        decoded it (the reflector's lists do).
        """
        changes = Changes()
        with self._lock:
            if not transformed:
                for position, item in enumerate(items):
                    items[position] = self.transform(item)
            fresh = {object_key(o): o for o in items}
            for key in builtins.list(self._items):
                if key not in fresh:
                    old = self._remove(key)
                    if old is not None:
                        changes.deleted.append(old)
            for key, new in fresh.items():
                old = self._store(key, new)
                if old is None:
                    changes.added.append(new)
                else:
                    changes.updated.append((old, new))
            self._resource_version = resource_version
        return changes

    def _advance(self, obj: Obj) -> None:
        version = resource_version(obj)
        if version:
            self._resource_version = version

    def _store(self, key: str, obj: Obj) -> Obj | None:
        old = self._remove(key)
        self._items[key] = obj
        for name, index_func in self.indexers.items():
            for value in index_func(obj):
                self._indexes[name].setdefault(value, set()).add(key)
        return old

    def _remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            for name, index_func in self.indexers.items():
                index = self._indexes[name]
                for value in index_func(old):
                    keys = index.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[value]
        return old
