"""The informer cache: raw objects keyed ``namespace/name``, with named indexes.

The reflector keeps a ``Store`` equal to what the API server has (list, then
watch events); the reconciler reads it instead of the API. Indexes answer
"which children belong to this DISVC" without scanning: ``BY_OWNER`` by the
controller ownerReference uid, ``BY_DISVC_LABEL`` by the ``disvc`` label.

Two rules keep the cache useful between our writes and their watch events:

- ``write_through`` puts the object a write returned into the cache, so a
  reconcile that runs before the watch event arrives sees our own write;
- no path replaces a cached object with an older resourceVersion, so a
  watch event already in flight when we wrote cannot roll the cache back to
  the state we just changed (which would trigger a needless second write).

Objects are stored without ``metadata.managedFields`` (nothing here reads
them and they often double an object's size) and with interned strings (see
``_strip``). Stored objects are shared with readers and must not be mutated.
"""

from __future__ import annotations

import builtins
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from disvc.builders import names
from disvc.builders.types import DISVC_KIND, Obj

IndexFunc: TypeAlias = Callable[[Obj], list[str]]
"""Maps an object to the index values it is filed under (none, one or many)."""

BY_OWNER: Final = "by_owner"
BY_DISVC_LABEL: Final = "by_disvc_label"


def object_key(obj: Obj) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects."""
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def controller_owner_uid(obj: Obj) -> list[str]:
    """The uid of the DISVC that controls ``obj``, if one does."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == DISVC_KIND and ref.get("uid"):
            return [str(ref["uid"])]
    return []


def disvc_label_key(obj: Obj) -> list[str]:
    """``namespace/<disvc label>``: the key of the DISVC the label names."""
    meta = obj["metadata"]
    value = (meta.get("labels") or {}).get(names.DISVC_LABEL)
    return [f"{meta.get('namespace', '')}/{value}"] if value else []


DEFAULT_INDEXERS: Final[Mapping[str, IndexFunc]] = {
    BY_OWNER: controller_owner_uid,
    BY_DISVC_LABEL: disvc_label_key,
}


def is_newer(candidate: Obj, current: Obj) -> bool:
    """Whether ``candidate`` is at least as new as ``current``.

    resourceVersions are opaque strings by contract; in practice they are
    etcd revisions. Compare as integers when both are; otherwise we cannot
    tell, and the caller's object wins.
    """
    new = candidate["metadata"].get("resourceVersion", "")
    old = current["metadata"].get("resourceVersion", "")
    if new.isdigit() and old.isdigit():
        return int(new) >= int(old)
    return True


_SHARED_VALUE_LENGTH: Final = 48
"""String values up to this length are interned too: kinds, API versions,
namespaces, label values and condition words repeat across thousands of
objects, while long values (storage URIs, messages) rarely do."""


def _strip(obj: Obj) -> Obj:
    """A compact copy: no ``managedFields``, one shared string per distinct key.

    Every watch event decodes its own copy of every key ("metadata",
    "apiVersion", "serving.kserve.io/template-hash", ...); interning them
    roughly halves what a cached object costs. A copy rather than a mutation:
    ``write_through`` gets objects the caller keeps.
    """
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return {sys.intern(k): _interned(v) for k, v in obj.items()}


def _interned(value: object) -> object:
    if isinstance(value, dict):
        return {sys.intern(k): _interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interned(v) for v in value]
    if isinstance(value, str) and len(value) <= _SHARED_VALUE_LENGTH:
        return sys.intern(value)
    return value


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A tombstone: ``obj`` vanished while the watch was down, found by a relist.

    Its final state (and any changes before the delete) were never seen;
    ``obj`` is the last state the cache held.
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


class Store:
    """A thread-safe keyed store of raw objects with named indexes."""

    def __init__(self, indexers: Mapping[str, IndexFunc] = DEFAULT_INDEXERS) -> None:
        self._lock = threading.RLock()
        self._items: dict[str, Obj] = {}
        self._indexers = dict(indexers)
        self._indexes: dict[str, dict[str, set[str]]] = {name: {} for name in indexers}
        self._resource_version = ""

    @property
    def resource_version(self) -> str:
        """The resourceVersion of the last list ``replace``d in."""
        return self._resource_version

    def put(self, obj: Obj) -> tuple[Obj | None, bool]:
        """Insert or replace; returns (the previous object or None, whether stored).

        An object older than the cached one is not stored (see the module
        docstring); the reflector then tells no handler about it.
        """
        return self._put(_strip(obj))

    def add(self, obj: Obj) -> Obj | None:
        """``put``, returning only the previous object."""
        return self._put(_strip(obj))[0]

    update = add

    def write_through(self, obj: Obj) -> bool:
        """Cache the object one of our writes returned, unless the cache is newer.

        Returns whether the cache changed.
        """
        stripped = _strip(obj)
        with self._lock:
            current = self._items.get(object_key(stripped))
            if current is not None and not _strictly_newer(stripped, current):
                return False
            return self._put(stripped)[1]

    def delete(self, obj: Obj) -> Obj | None:
        """Remove by the object's key; returns the last cached state, if any."""
        return self.delete_key(object_key(obj))

    def delete_key(self, key: str) -> Obj | None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            return old

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def list(self) -> list[Obj]:
        with self._lock:
            return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        """Objects filed under ``value`` in the named index."""
        with self._lock:
            keys = self._indexes[index].get(value, ())
            return [self._items[k] for k in sorted(keys)]

    def replace(self, items: builtins.list[Obj], resource_version: str) -> Changes:
        """Make the store hold exactly ``items`` (a fresh list) and report the difference.

        Objects cached by ``write_through`` after the list was taken (newer
        than ``resource_version``) are kept: the list could not know them.
        ``items`` is consumed: each element is swapped for its cached copy as
        it is stored, so a relist of thousands of objects never holds the
        decoded originals and the cached copies at once.
        """
        changes = Changes()
        with self._lock:
            for position, item in enumerate(items):
                items[position] = _strip(item)
            fresh = {object_key(o): o for o in items}
            for key, cached in builtins.list(self._items.items()):
                if key not in fresh and not _written_after(cached, resource_version):
                    self.delete_key(key)
                    changes.deleted.append(cached)
            for key, new in fresh.items():
                old, _ = self._put(new)
                if old is None:
                    changes.added.append(new)
                else:
                    changes.updated.append((old, self._items[key]))
            self._resource_version = resource_version
        return changes

    def _put(self, obj: Obj) -> tuple[Obj | None, bool]:
        key = object_key(obj)
        with self._lock:
            old = self._items.get(key)
            if old is not None:
                if not is_newer(obj, old):
                    return old, False
                self._unindex(key, old)
            self._items[key] = obj
            for name, index_func in self._indexers.items():
                for value in index_func(obj):
                    self._indexes[name].setdefault(value, set()).add(key)
            return old, True

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, index_func in self._indexers.items():
            index = self._indexes[name]
            for value in index_func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


def _strictly_newer(candidate: Obj, current: Obj) -> bool:
    new = candidate["metadata"].get("resourceVersion", "")
    old = current["metadata"].get("resourceVersion", "")
    if new.isdigit() and old.isdigit():
        return int(new) > int(old)
    return True


def _written_after(obj: Obj, list_resource_version: str) -> bool:
    version = obj["metadata"].get("resourceVersion", "")
    return version.isdigit() and list_resource_version.isdigit() and int(version) > int(list_resource_version)
