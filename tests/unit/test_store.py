"""The informer's store: keys, the caller's indexes and transform, relist replace."""

from __future__ import annotations

import threading
from typing import Any

from disvc.builders.types import Obj
from disvc.controller import compact, indexes, store


def child(
    name: str,
    rv: str = "1",
    namespace: str = "ns",
    owner_uid: str | None = None,
    label: str | None = None,
    **meta: Any,
) -> Obj:
    metadata: Obj = {"name": name, "namespace": namespace, "resourceVersion": rv, **meta}
    if owner_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "DistributedInferenceService",
             "name": "d", "uid": owner_uid, "controller": True},
        ]
    if label:
        metadata["labels"] = {"disvc": label}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata}


def child_store() -> store.Store:
    return store.Store(indexes.CHILD_INDEXERS, compact.compact)


def test_objects_are_keyed_namespace_slash_name() -> None:
    s = store.Store()
    s.put(child("a"))
    assert s.keys() == ["ns/a"]
    assert s.get("ns/a") is not None
    assert s.get("other/a") is None


def test_the_callers_transform_makes_the_stored_copy_without_mutating_the_event() -> None:
    s = child_store()
    obj = child("a", managedFields=[{"manager": "x"}])
    _, stored = s.put(obj)
    assert s.get("ns/a") is stored and "managedFields" not in stored["metadata"]
    assert obj["metadata"]["managedFields"] == [{"manager": "x"}]


def test_a_store_without_indexers_stores_objects_as_given() -> None:
    s = store.Store()
    obj = child("a", managedFields=[{"manager": "x"}])
    s.put(obj)
    assert s.get("ns/a") == obj


def test_by_owner_indexes_the_controller_owner_uid_only() -> None:
    s = child_store()
    s.put(child("a", owner_uid="u1"))
    s.put(child("b", owner_uid="u2"))
    not_controller = child("c")
    not_controller["metadata"]["ownerReferences"] = [
        {"kind": "DistributedInferenceService", "name": "d", "uid": "u1", "controller": False}
    ]
    s.put(not_controller)
    assert [o["metadata"]["name"] for o in s.by_index(indexes.BY_OWNER, "u1")] == ["a"]


def test_by_disvc_label_indexes_namespace_and_label_value() -> None:
    s = child_store()
    s.put(child("a", label="d"))
    s.put(child("b", label="d", namespace="other"))
    assert [o["metadata"]["name"] for o in s.by_index(indexes.BY_DISVC_LABEL, "ns/d")] == ["a"]
    assert s.by_index(indexes.BY_DISVC_LABEL, "ns/missing") == []


def test_an_update_moves_the_object_between_index_values() -> None:
    s = child_store()
    s.put(child("a", rv="1", label="old"))
    previous, _ = s.put(child("a", rv="2", label="new"))
    assert previous is not None and previous["metadata"]["resourceVersion"] == "1"
    assert s.by_index(indexes.BY_DISVC_LABEL, "ns/old") == []
    assert len(s.by_index(indexes.BY_DISVC_LABEL, "ns/new")) == 1


def test_delete_returns_the_last_state_and_unindexes() -> None:
    s = child_store()
    s.put(child("a", owner_uid="u1"))
    gone = s.delete(child("a"))
    assert gone is not None and gone["metadata"]["name"] == "a"
    assert s.by_index(indexes.BY_OWNER, "u1") == []
    assert s.delete(child("a")) is None


def test_the_store_is_at_the_version_of_the_last_list_or_event_applied() -> None:
    s = store.Store()
    s.replace([child("a", rv="5")], "7")
    assert s.resource_version == "7"
    s.put(child("a", rv="9"))
    assert s.resource_version == "9"
    s.delete(child("a", rv="11"))
    assert s.resource_version == "11"


def test_replace_reports_added_updated_and_deleted() -> None:
    s = store.Store()
    s.put(child("kept", rv="1"))
    s.put(child("vanished", rv="2"))
    changes = s.replace([child("kept", rv="5"), child("new", rv="6")], "7")
    assert [o["metadata"]["name"] for o in changes.added] == ["new"]
    assert [(o["metadata"]["resourceVersion"], n["metadata"]["resourceVersion"]) for o, n in changes.updated] == [
        ("1", "5")
    ]
    assert [o["metadata"]["name"] for o in changes.deleted] == ["vanished"]
    assert sorted(s.keys()) == ["ns/kept", "ns/new"]
    assert s.resource_version == "7"


def test_concurrent_writers_leave_the_indexes_consistent() -> None:
    s = child_store()

    def churn(prefix: str) -> None:
        for i in range(300):
            s.put(child(f"{prefix}-{i % 10}", rv=str(i + 1), label=f"{prefix}-{i % 3}"))
            if i % 4 == 0:
                s.delete(child(f"{prefix}-{i % 10}"))

    threads = [threading.Thread(target=churn, args=(p,)) for p in ("x", "y", "z")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    indexed = sorted(
        store.object_key(o) for p in ("x", "y", "z") for j in range(3)
        for o in s.by_index(indexes.BY_DISVC_LABEL, f"ns/{p}-{j}")
    )
    assert indexed == sorted(s.keys())
