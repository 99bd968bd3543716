"""Event handlers map informer events to the keys of the DISVCs they concern."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from disvc.builders.types import Obj
from disvc.controller import handler
from disvc.controller.store import DeletedFinalStateUnknown


class RecordingQueue:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def add(self, key: str) -> None:
        self.keys.append(key)


def owner_ref(name: str, kind: str = "DistributedInferenceService", controller: bool = True) -> Obj:
    return {"apiVersion": "serving.kserve.io/v1alpha1", "kind": kind, "name": name,
            "uid": f"uid-{name}", "controller": controller}


def obj(name: str = "x", namespace: str = "ns", labels: dict[str, str] | None = None,
        owners: list[Obj] | None = None) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        meta["labels"] = labels
    if owners is not None:
        meta["ownerReferences"] = owners
    return {"metadata": meta}


@dataclass(frozen=True)
class OwnerCase:
    id: str
    child: Obj
    expected: str | None


OWNER_CASES = [
    OwnerCase("controller ownerReference", obj(owners=[owner_ref("d")]), "ns/d"),
    OwnerCase("ownerReference wins over the label", obj(labels={"disvc": "other"}, owners=[owner_ref("d")]), "ns/d"),
    OwnerCase("label when no ownerReference", obj(labels={"disvc": "d"}), "ns/d"),
    OwnerCase("non-controller reference ignored", obj(owners=[owner_ref("d", controller=False)]), None),
    OwnerCase("controller of another kind ignored", obj(owners=[owner_ref("rs", kind="ReplicaSet")]), None),
    OwnerCase("label used when the controller is another kind",
              obj(labels={"disvc": "d"}, owners=[owner_ref("rs", kind="ReplicaSet")]), "ns/d"),
    OwnerCase("neither", obj(labels={"app": "d"}), None),
]


@pytest.mark.parametrize("case", OWNER_CASES, ids=lambda c: c.id)
def test_owner_key(case: OwnerCase) -> None:
    assert handler.owner_key(case.child) == case.expected


def test_disvc_events_enqueue_the_disvc_itself() -> None:
    queue = RecordingQueue()
    h = handler.EnqueueDisvc(queue)
    d = obj("d")
    h.on_add(d)
    h.on_update(d, obj("d"))
    h.on_delete(d)
    h.on_delete(DeletedFinalStateUnknown("ns/d", d))
    assert queue.keys == ["ns/d"] * 4


def test_child_events_enqueue_the_owner() -> None:
    queue = RecordingQueue()
    h = handler.EnqueueOwner(queue)
    c = obj("d-v1-0", owners=[owner_ref("d")])
    h.on_add(c)
    h.on_update(c, c)
    h.on_delete(c)
    assert queue.keys == ["ns/d"] * 3


def test_child_delete_tombstone_enqueues_the_owner_of_its_last_state() -> None:
    queue = RecordingQueue()
    handler.EnqueueOwner(queue).on_delete(DeletedFinalStateUnknown("ns/d-v1-0", obj(labels={"disvc": "d"})))
    assert queue.keys == ["ns/d"]


def test_child_whose_owner_changed_enqueues_old_and_new_owner() -> None:
    queue = RecordingQueue()
    handler.EnqueueOwner(queue).on_update(obj(labels={"disvc": "old"}), obj(labels={"disvc": "new"}))
    assert sorted(queue.keys) == ["ns/new", "ns/old"]


def test_child_that_lost_its_owner_enqueues_the_old_owner() -> None:
    queue = RecordingQueue()
    handler.EnqueueOwner(queue).on_update(obj(labels={"disvc": "d"}), obj(labels={}))
    assert queue.keys == ["ns/d"]


def test_unowned_child_enqueues_nothing() -> None:
    queue = RecordingQueue()
    h = handler.EnqueueOwner(queue)
    h.on_add(obj())
    h.on_delete(obj())
    assert queue.keys == []
