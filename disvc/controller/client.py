"""The production ``Reader`` and ``Writer``: informer caches for reads, ``Kube`` for writes.

The reconciler only knows the ``Reader``/``Writer`` protocols
(``reconcile.py``); the manager wires these implementations in. Reads come
from the informer caches, so a converged resync costs no API request; the one
uncached read, ``get_live``, exists because the child informers see only
labelled objects and a foreign object holding one of our names would
otherwise be invisible until we overwrote it.

Every write goes through server-side apply, a create or a preconditioned
delete, and what it returned is recorded in the kind's ``MutationCache``: a
reconcile that runs before the watch event of our own write arrives must see
that write, or it would repeat it. Each write logs one info line with
``action``, ``kind`` and ``object``. Every write first asks ``may_write``
(with leader election: ``LeaderElector.may_write``, false once the renew
deadline has passed since the last renewal) and is refused with
``NotLeaderError`` before it is sent when the answer is no.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from disvc.builders import diff, names
from disvc.builders.types import DISVC_KIND, ChildKind, ChildRef, Obj, ObjectKey
from disvc.controller.errors import NotLeaderError
from disvc.controller.indexes import BY_DISVC_LABEL, BY_OWNER
from disvc.controller.kube import Kube
from disvc.controller.mutation_cache import MutationCache
from disvc.controller.store import DeletedFinalStateUnknown, object_key

log = structlog.get_logger(__name__)


class CacheReader:
    """Reads DISVCs and their children from informer caches; ``get_live`` asks the API."""

    def __init__(self, kube: Kube, disvcs: MutationCache, children: Mapping[ChildKind, MutationCache]) -> None:
        self._kube = kube
        self._disvcs = disvcs
        self._children = children

    def get_disvc(self, key: ObjectKey) -> Obj | None:
        return self._disvcs.get(str(key))

    def children(self, key: ObjectKey) -> list[Obj]:
        disvc = self._disvcs.get(str(key))
        uid = (disvc or {}).get("metadata", {}).get("uid")
        found: list[Obj] = []
        for cache in self._children.values():
            # Owned (by uid) or merely labelled: the builders decide which of
            # these they control; a labelled object owned by someone else is a
            # conflict they must see.
            seen: set[str] = set()
            for obj in (*(cache.by_index(BY_OWNER, uid) if uid else ()), *cache.by_index(BY_DISVC_LABEL, str(key))):
                obj_key = object_key(obj)
                if obj_key not in seen:
                    seen.add(obj_key)
                    found.append(obj)
        return found

    def get_live(self, kind: ChildKind, namespace: str, name: str) -> Obj | None:
        return self._kube.get(kind, namespace, name)


@dataclass(frozen=True, slots=True)
class _Written:
    """What one of our writes of a child returned, to recognise it later."""

    uid: str
    applied_hash: str
    version: str
    """``metadata.generation`` where the kind has one (status updates leave it
    alone), else ``metadata.resourceVersion``."""


def _version(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return str(meta.get("generation") or meta.get("resourceVersion", ""))


def _applied_hash(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("annotations", {}).get(names.APPLIED_HASH_ANNOTATION, ""))


class ApiWriter:
    """Writes through ``Kube`` and records each write in the informer caches."""

    def __init__(
        self, kube: Kube, caches: Mapping[str, MutationCache], *, may_write: Callable[[], bool] | None = None
    ) -> None:
        self._kube = kube
        self._may_write = may_write
        self._caches = caches
        """Cache per kind (DISVC and every child kind)."""
        self._written: dict[tuple[str, str], _Written] = {}
        """(kind, namespace/name) -> what our last write of that child returned."""
        self._lock = threading.Lock()

    def apply(self, obj: Obj, *, force: bool = True) -> Obj:
        key = (obj["kind"], object_key(obj))
        cached = self._server_rewrite_of_our_last_write(key, obj)
        if cached is not None:
            # Admission webhooks (KServe's defaulter rewrites ISVC specs) make
            # the stored object differ from what we send; sending it again
            # would change nothing and, on every event, never stop.
            log.debug("Live object is our last write as the server stored it", kind=obj["kind"], object=key[1])
            return cached
        self._check_leading()
        applied = self._kube.apply(obj, force=force)
        self._wrote(key, applied)
        log.info("Applied object", action="apply", kind=obj["kind"], object=key[1])
        return applied

    def create(self, obj: Obj) -> Obj:
        key = (obj["kind"], object_key(obj))
        self._check_leading()
        created = self._kube.create(obj)
        self._wrote(key, created)
        log.info("Created object", action="create", kind=obj["kind"], object=key[1])
        return created

    def _wrote(self, key: tuple[str, str], written: Obj) -> None:
        """Remember what a child write returned and record it in the cache."""
        meta = written.get("metadata", {})
        with self._lock:
            self._written[key] = _Written(str(meta.get("uid", "")), _applied_hash(written), _version(written))
        self._record(written)

    def _server_rewrite_of_our_last_write(self, key: tuple[str, str], obj: Obj) -> Obj | None:
        """The cached object, when it is still exactly what our last write of
        this same body returned: nobody changed its spec since, and the labels,
        annotations and owner references we set are all there."""
        with self._lock:
            last = self._written.get(key)
        cache = self._caches.get(key[0])
        cached = cache.get(key[1]) if cache is not None else None
        if last is None or cached is None:
            return None
        meta = cached.get("metadata", {})
        same_write = (
            last.uid == meta.get("uid")
            and last.applied_hash == _applied_hash(obj)
            and last.version == _version(cached)
        )
        if same_write and diff.is_subset(obj["metadata"], meta):
            return cached
        return None

    def delete(self, ref: ChildRef) -> None:
        self._check_leading()
        self._kube.delete(ref.kind, ref.namespace, ref.name, uid=ref.uid, resource_version=ref.resource_version)
        ref_key = str(ObjectKey(ref.namespace, ref.name))
        with self._lock:
            self._written.pop((ref.kind, ref_key), None)
        cache = self._caches.get(ref.kind)
        if cache is not None:
            # Hidden now so the next reconcile does not delete it again; if
            # finalizers keep it around, its next version shows it again.
            cache.deletion(ref_key, ref.resource_version)
        log.info("Deleted object", action="delete", kind=ref.kind, object=ref_key)

    def forget(self, kind: str, child: Obj | DeletedFinalStateUnknown) -> None:
        """A child left the cache (the garbage collector, a user, our delete):
        what we last wrote of it can no longer match anything."""
        key = object_key(child) if isinstance(child, dict) else child.key
        with self._lock:
            self._written.pop((kind, key), None)

    @property
    def remembered(self) -> int:
        """Children whose last write is remembered."""
        with self._lock:
            return len(self._written)

    def apply_status(self, disvc: Obj, status: Obj) -> Obj:
        meta = disvc["metadata"]
        body: Obj = {
            "apiVersion": disvc["apiVersion"],
            "kind": disvc["kind"],
            # Preconditions: the status was worked out from this very object.
            # A DISVC re-created under the same name (``kubectl replace
            # --force``) or changed since we read it refuses it (409) and the
            # key is reconciled again from the cache. The uid alone would not
            # do: a status write takes its metadata from the stored object,
            # and the API server (1.28) ignores a uid that differs there; the
            # resourceVersion it checks, and a re-created object never has ours.
            "metadata": {
                "namespace": meta["namespace"],
                "name": meta["name"],
                **{key: meta[key] for key in ("uid", "resourceVersion") if meta.get(key)},
            },
            "status": status,
        }
        self._check_leading()
        applied = self._kube.apply(body, subresource="status")
        self._record(applied)
        log.info("Updated status", action="status", kind=DISVC_KIND, object=object_key(disvc))
        return applied

    def _check_leading(self) -> None:
        if self._may_write is not None and not self._may_write():
            raise NotLeaderError("write refused: this replica may no longer lead (renew deadline passed)")

    def _record(self, obj: Obj) -> None:
        cache = self._caches.get(obj.get("kind", ""))
        if cache is not None and obj.get("metadata", {}).get("name"):
            cache.mutation(obj)
