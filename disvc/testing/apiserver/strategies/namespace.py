"""Namespaces: always labelled with their name, deleted by emptying them first.

A Namespace carries the ``kubernetes.io/metadata.name`` label and the
``kubernetes`` finalizer whatever the client sends. Deleting one marks it
Terminating and deletes everything in it; it goes away once empty, which
the store checks after every namespaced removal (the namespace controller's
job in a real cluster). Creating in a terminating namespace is refused by
the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from disvc.testing.apiserver import clock
from disvc.testing.apiserver.storage import Obj, Stored
from disvc.testing.apiserver.strategies.base import Strategy

if TYPE_CHECKING:
    from disvc.testing.apiserver.store import Store

KEY: Final = "/namespaces"
"""Storage key of the Namespace resource type."""
NAME_LABEL: Final = "kubernetes.io/metadata.name"


def initial(name: str, uid: str) -> Obj:
    """A Namespace as a fresh cluster has it (default, kube-system, ...)."""
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": uid,
            "creationTimestamp": clock.now(),
            "labels": {NAME_LABEL: name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


class NamespaceStrategy(Strategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        self._fixed_fields(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        self._fixed_fields(new)

    @staticmethod
    def _fixed_fields(obj: Obj) -> None:
        meta = obj["metadata"]
        meta.setdefault("labels", {})[NAME_LABEL] = meta.get("name", "")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])

    def delete(self, store: Store, old: Stored, policy: str) -> tuple[Obj, bool] | None:
        name = old.obj["metadata"]["name"]
        if not old.obj["metadata"].get("deletionTimestamp"):
            marked = old.copy()
            marked["metadata"]["deletionTimestamp"] = clock.now()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            marked["status"] = {"phase": "Terminating"}
            old = store.storage.put(KEY, "", marked)
            for resource, stored in list(store.storage.namespace_contents(name)):
                store.delete_stored(resource, stored, "Background")
        if finish_if_empty(store, name) is None:
            return dict(old.obj), True
        return old.obj, False


def finish_if_empty(store: Store, name: str) -> Stored | None:
    """Remove a terminating namespace once it is empty; returns it if it stays."""
    ns = store.storage.get(KEY, "", name)
    if ns is None or not ns.obj["metadata"].get("deletionTimestamp"):
        return ns
    for _ in store.storage.namespace_contents(name):
        return ns
    store.storage.remove(KEY, "", name)
    return None
