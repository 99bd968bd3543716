"""The generic store: one write pipeline for every type, as k8s.io/apiserver's registry.

Every create, update, patch and apply ends in :meth:`Store.commit`, which
does what the API server does for any type: keep the server-owned metadata
(uid, creationTimestamp, generation, deletion marks), isolate ``.status``
behind a status subresource, refuse new finalizers on a deleting object, ask
the type's strategy (:mod:`strategies`) to prepare, default and validate,
record field ownership (:mod:`apply`), detect a no-op, bump
``metadata.generation`` when the content changed, and store. Deletion
honours finalizers, then collects garbage: objects whose every owner is
gone are deleted too, as kube-controller-manager's garbage collector would.

The store runs on the server's event-loop thread only; the HTTP side is the
handlers' (:mod:`handlers`).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final

from disvc.testing.apiserver import apply, clock, errors
from disvc.testing.apiserver.resources import Registry, ResourceType
from disvc.testing.apiserver.storage import Change, Obj, Storage, Stored, TooLarge
from disvc.testing.apiserver.strategies import Strategies, Strategy, namespace
from disvc.testing.apiserver.validation import Cause
from disvc.testing.apiserver.watch import WatchHub

INITIAL_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")
_NAME_CHARS: Final = "bcdfghjklmnpqrstvwxz2456789"
"""generateName suffix alphabet: no vowels, so no accidental words."""
_SERVER_META: Final = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


def _without_volatile(obj: Obj) -> Obj:
    """The object minus what a no-op write may change (rv, managedFields times)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    managed = meta.get("managedFields")
    if managed:
        meta["managedFields"] = [
            {k: v for k, v in entry.items() if k != "time"} for entry in managed
        ]
    return dict(obj, metadata=meta)


def _content(obj: Obj, with_status: bool) -> Obj:
    """What ``metadata.generation`` tracks: everything but metadata (and status)."""
    excluded = ("metadata", "status") if with_status else ("metadata",)
    return {k: v for k, v in obj.items() if k not in excluded}


class Store:
    """Objects of every served type, written through their strategies."""

    def __init__(
        self,
        registry: Registry,
        hub: WatchHub,
        *,
        garbage_collection: bool,
        defer: Callable[[Callable[[], None]], None],
    ) -> None:
        self.registry = registry
        self.hub = hub
        self.storage = Storage(self._on_change)
        self._strategies = Strategies(registry)
        self._garbage_collection = garbage_collection
        self._defer = defer
        """Run a callable soon on the loop thread (garbage collection)."""
        self._uids: dict[str, tuple[str, str, str]] = {}
        """uid -> (resource key, namespace, name), for ownerReference GC."""
        for name in INITIAL_NAMESPACES:
            self.storage.put(namespace.KEY, "", namespace.initial(name, str(uuid.uuid4())))

    def _on_change(self, change: Change) -> None:
        meta = change.stored.obj["metadata"]
        uid = meta.get("uid")
        if uid:
            if change.type == "DELETED":
                self._uids.pop(uid, None)
            else:
                self._uids[uid] = (change.resource, change.namespace, meta["name"])
        self.hub.publish(change)

    def strategy(self, rt: ResourceType) -> Strategy:
        return self._strategies.for_type(rt)

    # --- reads and checks ---------------------------------------------------------

    def require(self, rt: ResourceType, namespace: str, name: str) -> Stored:
        stored = self.storage.get(rt.key, namespace, name)
        if stored is None:
            raise errors.not_found(rt, name)
        return stored

    def require_namespace_open(self, rt: ResourceType, ns_name: str, name: str) -> None:
        """A namespaced object may only be created in an existing, active namespace."""
        if not rt.namespaced:
            return
        ns = self.storage.get(namespace.KEY, "", ns_name)
        if ns is None:
            raise errors.namespace_not_found(ns_name)
        if ns.obj["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rt, name,
                f"unable to create new content in namespace {ns_name} because it is being terminated",
            )

    # --- create and update ----------------------------------------------------------

    def create(
        self, rt: ResourceType, ns_name: str, obj: Obj, *, manager: str, dry_run: bool, strict: bool
    ) -> Obj:
        meta = obj["metadata"]
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(rt, "", [Cause(
                    "FieldValueRequired", "metadata.name", "Required value: name or generateName is required",
                )])
            meta["name"] = prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        name = meta["name"]
        self.require_namespace_open(rt, ns_name, name)
        if self.storage.get(rt.key, ns_name, name) is not None:
            raise errors.already_exists(rt, name)
        created, _ = self.commit(
            rt, ns_name, None, obj, subresource="", manager=manager, dry_run=dry_run, strict=strict
        )
        return created

    def update(
        self, rt: ResourceType, ns_name: str, name: str, subresource: str, obj: Obj,
        *, manager: str, dry_run: bool, strict: bool,
    ) -> tuple[Obj, bool]:
        """PUT: replace the object (or create it, for types that allow that)."""
        old = self.storage.get(rt.key, ns_name, name)
        if old is None:
            if not rt.allow_create_on_update or subresource:
                raise errors.not_found(rt, name)
            self.require_namespace_open(rt, ns_name, name)
            return self.commit(
                rt, ns_name, None, obj, subresource="", manager=manager, dry_run=dry_run, strict=strict
            )
        rv = obj["metadata"].get("resourceVersion")
        if rv:
            if str(rv) != old.obj["metadata"]["resourceVersion"]:
                raise errors.stale(rt, name)
        elif not rt.allow_unconditional_update:
            raise errors.invalid(rt, name, [Cause(
                "FieldValueInvalid", "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            )])
        return self.commit(
            rt, ns_name, old, obj, subresource=subresource, manager=manager, dry_run=dry_run, strict=strict
        )

    # --- the write pipeline -------------------------------------------------------------

    def commit(
        self,
        rt: ResourceType,
        ns_name: str,
        old: Stored | None,
        new: Obj,
        *,
        subresource: str,
        manager: str | None,
        dry_run: bool,
        strict: bool = False,
    ) -> tuple[Obj, bool]:
        """Run the type's strategy on ``new`` and store it.

        Returns (object to answer with, whether it was created).  ``manager``
        None means managedFields were already computed (server-side apply).
        """
        strategy = self.strategy(rt)
        now = clock.now()
        name = new["metadata"].get("name", "")
        if old is not None:
            new = self._carry_over(rt, old, new, subresource)
            strategy.prepare_for_update(new, old.obj)
        else:
            for key in (*_SERVER_META, "selfLink"):
                new["metadata"].pop(key, None)
            new["metadata"].pop("resourceVersion", None)
            strategy.prepare_for_create(new)
        new = strategy.canonicalize(new, strict=strict)
        causes = strategy.validate(new, old.obj if old is not None else None)
        if causes:
            raise errors.invalid(rt, name, causes)
        if manager is not None:
            new = apply.record_update(
                old.obj if old is not None else None, new, manager=manager, now=now,
                subresource=subresource, list_keys=strategy.list_keys(),
                status_subresource=rt.status_subresource,
            )
        meta = new["metadata"]
        if old is not None:
            if old.obj["metadata"].get("deletionTimestamp") and not meta.get("finalizers"):
                if dry_run:
                    return new, False
                gone = self.storage.remove(rt.key, ns_name, name)
                if gone is not None:
                    self._after_removal(strategy, gone, "Background")
                    return gone.obj, False
            if _without_volatile(new) == _without_volatile(old.obj):
                return old.obj, False
            if rt.tracks_generation:
                generation = old.obj["metadata"].get("generation", 1)
                if _content(new, rt.status_subresource) != _content(old.obj, rt.status_subresource):
                    generation += 1
                meta["generation"] = generation
        else:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now
            if rt.tracks_generation:
                meta["generation"] = 1
        if dry_run:
            if old is not None:
                meta["resourceVersion"] = old.obj["metadata"]["resourceVersion"]
            return new, old is None
        try:
            stored = self.storage.put(rt.key, ns_name, new)
        except TooLarge as refused:
            raise errors.storage_refused(str(refused)) from None
        strategy.after_store(self, stored)
        return stored.obj, old is None

    @staticmethod
    def _carry_over(rt: ResourceType, old: Stored, new: Obj, subresource: str) -> Obj:
        """What an update keeps of the old object: server metadata, the other half of status."""
        old_meta = old.obj["metadata"]
        if subresource == "status":
            managed = new["metadata"].get("managedFields")
            status = new.get("status")
            new = old.copy()
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            if managed is not None:
                new["metadata"]["managedFields"] = managed
        meta = new["metadata"]
        for key in _SERVER_META:
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if subresource == "" and rt.status_subresource:
            if "status" in old.obj:
                new["status"] = old.obj["status"]
            else:
                new.pop("status", None)
        added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
        if old_meta.get("deletionTimestamp") and added:
            shown = ", ".join(f'"{f}"' for f in sorted(added))
            raise errors.invalid(rt, meta.get("name", ""), [Cause(
                "FieldValueForbidden", "metadata.finalizers",
                "Forbidden: no new finalizers can be added if the object is being deleted, "
                f"found new finalizers []string{{{shown}}}",
            )])
        meta.pop("resourceVersion", None)
        return new

    # --- deletion -----------------------------------------------------------------------

    def delete(self, rt: ResourceType, old: Stored, policy: str) -> tuple[Obj, bool]:
        """Delete now, or mark for deletion while finalizers remain.

        Returns (object to answer with, whether it is gone).
        """
        return self._delete(self.strategy(rt), rt.key, old, policy)

    def delete_stored(self, key: str, old: Stored, policy: str) -> tuple[Obj, bool]:
        """:meth:`delete` for an object known by storage key (cascades, garbage collection)."""
        return self._delete(self._strategies.for_key(key), key, old, policy)

    def _delete(self, strategy: Strategy | None, key: str, old: Stored, policy: str) -> tuple[Obj, bool]:
        if strategy is not None:
            special = strategy.delete(self, old, policy)
            if special is not None:
                return special
        meta = old.obj["metadata"]
        ns_name = meta.get("namespace", "")
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return old.obj, False
            marked = old.copy()
            marked["metadata"]["deletionTimestamp"] = clock.now()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            stored = self.storage.put(key, ns_name, marked)
            return stored.obj, False
        gone = self.storage.remove(key, ns_name, meta["name"])
        assert gone is not None
        self._after_removal(strategy, gone, policy)
        return gone.obj, True

    def _after_removal(self, strategy: Strategy | None, gone: Stored, policy: str) -> None:
        if strategy is not None:
            strategy.after_delete(self, gone)
        meta = gone.obj["metadata"]
        ns_name = meta.get("namespace", "")
        if self._garbage_collection and policy != "Orphan":
            uid = meta.get("uid", "")
            self._defer(lambda: self._collect_dependents(uid, ns_name))
        if ns_name:
            namespace.finish_if_empty(self, ns_name)

    def drop_resource(self, key: str) -> None:
        """A type is no longer served: delete its objects and end its watches."""
        self.storage.remove_all(key)
        self.hub.close_resource(key)
        self._strategies.forget(key)

    def _collect_dependents(self, owner_uid: str, ns_name: str) -> None:
        """Delete objects all of whose owners are gone (the garbage collector's job)."""
        if not owner_uid:
            return
        candidates: Iterable[tuple[str, Stored]] = (
            self.storage.namespace_contents(ns_name) if ns_name else self.storage.all_namespaced()
        )
        for key, stored in list(candidates):
            meta: Any = stored.obj["metadata"]
            refs = meta.get("ownerReferences") or []
            if not any(ref.get("uid") == owner_uid for ref in refs):
                continue
            if any(ref.get("uid") in self._uids for ref in refs):
                continue
            current = self.storage.get(key, meta.get("namespace", ""), meta["name"])
            if current is not None and current.rv == stored.rv:
                self.delete_stored(key, current, "Background")
