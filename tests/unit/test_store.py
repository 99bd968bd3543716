"""The informer cache: keys, indexes, write-through and relist replace."""

from __future__ import annotations

import threading
from typing import Any

from disvc.builders.types import Obj
from disvc.controller import store


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


def test_objects_are_keyed_namespace_slash_name() -> None:
    s = store.Store()
    s.add(child("a"))
    s.add({"kind": "Namespace", "metadata": {"name": "cluster-wide", "resourceVersion": "1"}})
    assert sorted(s.keys()) == ["cluster-wide", "ns/a"]
    assert s.get("ns/a") is not None
    assert s.get("other/a") is None


def test_managed_fields_are_stripped_without_mutating_the_caller_object() -> None:
    s = store.Store()
    obj = child("a", managedFields=[{"manager": "x"}])
    s.write_through(obj)
    cached = s.get("ns/a")
    assert cached is not None and "managedFields" not in cached["metadata"]
    assert obj["metadata"]["managedFields"] == [{"manager": "x"}]


def test_by_owner_indexes_the_controller_owner_uid_only() -> None:
    s = store.Store()
    s.add(child("a", owner_uid="u1"))
    s.add(child("b", owner_uid="u2"))
    not_controller = child("c")
    not_controller["metadata"]["ownerReferences"] = [
        {"kind": "DistributedInferenceService", "name": "d", "uid": "u1", "controller": False}
    ]
    s.add(not_controller)
    assert [o["metadata"]["name"] for o in s.by_index(store.BY_OWNER, "u1")] == ["a"]


def test_by_disvc_label_indexes_namespace_and_label_value() -> None:
    s = store.Store()
    s.add(child("a", label="d"))
    s.add(child("b", label="d", namespace="other"))
    assert [o["metadata"]["name"] for o in s.by_index(store.BY_DISVC_LABEL, "ns/d")] == ["a"]
    assert s.by_index(store.BY_DISVC_LABEL, "ns/missing") == []


def test_update_moves_the_object_between_index_values() -> None:
    s = store.Store()
    s.add(child("a", rv="1", label="old"))
    previous = s.update(child("a", rv="2", label="new"))
    assert previous is not None and previous["metadata"]["resourceVersion"] == "1"
    assert s.by_index(store.BY_DISVC_LABEL, "ns/old") == []
    assert len(s.by_index(store.BY_DISVC_LABEL, "ns/new")) == 1


def test_delete_returns_the_last_state_and_unindexes() -> None:
    s = store.Store()
    s.add(child("a", owner_uid="u1"))
    gone = s.delete(child("a"))
    assert gone is not None and gone["metadata"]["name"] == "a"
    assert s.by_index(store.BY_OWNER, "u1") == []
    assert s.delete(child("a")) is None


def test_write_through_replaces_only_with_a_newer_resource_version() -> None:
    s = store.Store()
    s.add(child("a", rv="10"))
    assert not s.write_through(child("a", rv="9"))
    assert not s.write_through(child("a", rv="10"))
    assert s.write_through(child("a", rv="11"))
    cached = s.get("ns/a")
    assert cached is not None and cached["metadata"]["resourceVersion"] == "11"


def test_write_through_treats_non_numeric_versions_as_newer() -> None:
    s = store.Store()
    s.add(child("a", rv="abc"))
    assert s.write_through(child("a", rv="abd"))


def test_write_through_adds_an_object_the_cache_lacks() -> None:
    s = store.Store()
    assert s.write_through(child("a", rv="3"))
    assert s.get("ns/a") is not None


def test_a_watch_event_older_than_our_write_does_not_roll_the_cache_back() -> None:
    s = store.Store()
    s.write_through(child("a", rv="12"))
    previous, stored = s.put(child("a", rv="11"))
    assert not stored
    assert previous is not None and previous["metadata"]["resourceVersion"] == "12"
    cached = s.get("ns/a")
    assert cached is not None and cached["metadata"]["resourceVersion"] == "12"


def test_replace_reports_added_updated_and_deleted() -> None:
    s = store.Store()
    s.add(child("kept", rv="1"))
    s.add(child("vanished", rv="2"))
    changes = s.replace([child("kept", rv="5"), child("new", rv="6")], "7")
    assert [o["metadata"]["name"] for o in changes.added] == ["new"]
    assert [(o["metadata"]["resourceVersion"], n["metadata"]["resourceVersion"]) for o, n in changes.updated] == [
        ("1", "5")
    ]
    assert [o["metadata"]["name"] for o in changes.deleted] == ["vanished"]
    assert sorted(s.keys()) == ["ns/kept", "ns/new"]
    assert s.resource_version == "7"


def test_replace_keeps_an_object_written_through_after_the_list_snapshot() -> None:
    s = store.Store()
    s.write_through(child("created-after-list", rv="20"))
    changes = s.replace([], "15")
    assert changes.deleted == []
    assert s.get("ns/created-after-list") is not None


def test_concurrent_writers_leave_the_indexes_consistent() -> None:
    s = store.Store()

    def churn(prefix: str) -> None:
        for i in range(300):
            s.add(child(f"{prefix}-{i % 10}", rv=str(i + 1), label=f"{prefix}-{i % 3}"))
            if i % 4 == 0:
                s.delete(child(f"{prefix}-{i % 10}"))

    threads = [threading.Thread(target=churn, args=(p,)) for p in ("x", "y", "z")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    indexed = sorted(
        store.object_key(o) for p in ("x", "y", "z") for j in range(3)
        for o in s.by_index(store.BY_DISVC_LABEL, f"ns/{p}-{j}")
    )
    assert indexed == sorted(s.keys())
