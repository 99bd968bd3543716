"""Patches and server-side apply of the loopback API server behave as kube-apiserver's."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest

from disvc.testing.apiserver import apply, fieldpath, listtypes, patch

SERVICE = listtypes.builtin_list_keys("Service")


def service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": spec,
    }


def fields_of(obj: dict[str, Any], manager: str, operation: str = "Apply", subresource: str = "") -> dict[str, Any]:
    for entry in obj["metadata"].get("managedFields", []):
        if (entry["manager"], entry["operation"], entry.get("subresource", "")) == (manager, operation, subresource):
            fields: dict[str, Any] = entry["fieldsV1"]
            return fields
    raise AssertionError(f"no managedFields entry for {manager}/{operation}/{subresource}")


def managers(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])]


# ---------------------------------------------------------------- merge patch


@dataclass(frozen=True)
class PatchCase:
    id: str
    target: Any
    patch: Any
    want: Any


MERGE_CASES = [
    PatchCase("adds a field", {"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    PatchCase("null deletes", {"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    PatchCase("nested maps merge", {"m": {"x": 1, "y": 2}}, {"m": {"y": 3}}, {"m": {"x": 1, "y": 3}}),
    PatchCase("lists are replaced", {"l": [1, 2, 3]}, {"l": [4]}, {"l": [4]}),
    PatchCase("a map replaces a scalar", {"a": 1}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}),
]


@pytest.mark.parametrize("case", MERGE_CASES, ids=lambda c: c.id)
def test_merge_patch_follows_rfc7386(case: PatchCase) -> None:
    target = copy.deepcopy(case.target)
    assert patch.merge_patch(target, case.patch) == case.want
    assert target == case.target


# ----------------------------------------------------------------- JSON patch

JSON_CASES = [
    PatchCase("add a field", {"a": 1}, [{"op": "add", "path": "/b", "value": 2}], {"a": 1, "b": 2}),
    PatchCase("append to a list", {"l": [1]}, [{"op": "add", "path": "/l/-", "value": 2}], {"l": [1, 2]}),
    PatchCase("insert into a list", {"l": [1, 3]}, [{"op": "add", "path": "/l/1", "value": 2}], {"l": [1, 2, 3]}),
    PatchCase("remove", {"a": 1, "b": 2}, [{"op": "remove", "path": "/a"}], {"b": 2}),
    PatchCase("replace", {"a": 1}, [{"op": "replace", "path": "/a", "value": 5}], {"a": 5}),
    PatchCase("move", {"a": 1}, [{"op": "move", "from": "/a", "path": "/b"}], {"b": 1}),
    PatchCase("copy", {"a": {"x": 1}}, [{"op": "copy", "from": "/a", "path": "/b"}], {"a": {"x": 1}, "b": {"x": 1}}),
    PatchCase("test passes", {"a": 1}, [{"op": "test", "path": "/a", "value": 1}], {"a": 1}),
    PatchCase(
        "escaped pointer",
        {"a/b": 1, "c~d": 2},
        [{"op": "remove", "path": "/a~1b"}, {"op": "remove", "path": "/c~0d"}],
        {},
    ),
]


@pytest.mark.parametrize("case", JSON_CASES, ids=lambda c: c.id)
def test_json_patch_follows_rfc6902(case: PatchCase) -> None:
    target = copy.deepcopy(case.target)
    assert patch.json_patch(target, case.patch) == case.want
    assert target == case.target


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/l/5", "value": 1}],
        [{"op": "jump", "path": "/a"}],
        [{"op": "add", "path": "a", "value": 1}],
        [{"op": "add", "path": "/b"}],
        {"op": "add"},
    ],
    ids=[
        "failed test",
        "missing path",
        "index out of range",
        "unknown op",
        "bad pointer",
        "missing value",
        "not a list",
    ],
)
def test_json_patch_rejects_bad_operations(ops: Any) -> None:
    with pytest.raises(patch.PatchError):
        patch.json_patch({"a": 1, "l": [1]}, ops)


# ----------------------------------------------------- strategic merge patch


@dataclass(frozen=True)
class StrategicCase:
    id: str
    kind: str
    target: dict[str, Any]
    patch: dict[str, Any]
    want: dict[str, Any]


POD_SPEC = {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}

STRATEGIC_CASES = [
    StrategicCase(
        "containers merge by name",
        "Pod",
        {"spec": POD_SPEC},
        {"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}},
        {
            "spec": {
                "containers": [
                    {"name": "a", "image": "a:1"},
                    {"name": "b", "image": "b:2"},
                    {"name": "c", "image": "c:1"},
                ]
            }
        },
    ),
    StrategicCase(
        "$patch delete removes a list item",
        "Pod",
        {"spec": POD_SPEC},
        {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}},
        {"spec": {"containers": [{"name": "b", "image": "b:1"}]}},
    ),
    StrategicCase(
        "$patch replace replaces the list",
        "Pod",
        {"spec": POD_SPEC},
        {"spec": {"containers": [{"name": "z", "image": "z:1"}, {"$patch": "replace"}]}},
        {"spec": {"containers": [{"name": "z", "image": "z:1"}]}},
    ),
    StrategicCase(
        "Service ports merge by port",
        "Service",
        {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 81}]}},
        {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
        {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 81}]}},
    ),
    StrategicCase(
        "ownerReferences merge by uid",
        "Service",
        {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}},
        {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}},
        {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}},
    ),
    StrategicCase(
        "conditions merge by type",
        "Service",
        {"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}]}},
        {"status": {"conditions": [{"type": "B", "status": "False"}]}},
        {"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]}},
    ),
    StrategicCase(
        "Ingress rules are replaced",
        "Ingress",
        {"spec": {"rules": [{"host": "a"}, {"host": "b"}]}},
        {"spec": {"rules": [{"host": "c"}]}},
        {"spec": {"rules": [{"host": "c"}]}},
    ),
    StrategicCase(
        "finalizers union and $deleteFromPrimitiveList",
        "Service",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]}},
        {"metadata": {"finalizers": ["b", "c"]}},
    ),
    StrategicCase(
        "null deletes and $patch replace on a map",
        "Service",
        {"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "1"}}},
        {"metadata": {"labels": {"a": None}, "annotations": {"y": "2", "$patch": "replace"}}},
        {"metadata": {"labels": {"b": "2"}, "annotations": {"y": "2"}}},
    ),
    StrategicCase(
        "$retainKeys drops unlisted keys",
        "Deployment",
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"type": "Recreate", "$retainKeys": ["type"]}}},
        {"spec": {"strategy": {"type": "Recreate"}}},
    ),
]


@pytest.mark.parametrize("case", STRATEGIC_CASES, ids=lambda c: c.id)
def test_strategic_merge_patch_merges_lists_by_patch_merge_key(case: StrategicCase) -> None:
    target = copy.deepcopy(case.target)
    assert patch.strategic_merge_patch(target, case.patch, case.kind) == case.want
    assert target == case.target


# ------------------------------------------------------------------ fieldpath


def test_fields_v1_round_trips_members_with_children() -> None:
    encoded = {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}},
        "f:finalizers": {'v:"x"': {}},
    }
    assert fieldpath.to_fields_v1(fieldpath.from_fields_v1(encoded)) == encoded


def test_field_path_description_names_list_keys() -> None:
    path = ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:targetPort")
    assert fieldpath.describe(path) == '.spec.ports[port=80,protocol="TCP"].targetPort'


# --------------------------------------------------------- server-side apply

DESIRED = service(selector={"app": "web"}, ports=[{"port": 80, "targetPort": 8080}], sessionAffinity="ClientIP")


def ssa(live: dict[str, Any] | None, applied: dict[str, Any], manager: str = "ctl", **kw: Any) -> dict[str, Any]:
    kw.setdefault("force", False)
    kw.setdefault("now", "2024-01-01T00:00:00Z")
    kw.setdefault("list_keys", SERVICE)
    return apply.server_side_apply(live, applied, manager=manager, **kw)


def test_apply_create_records_the_applied_fields_in_fields_v1() -> None:
    created = ssa(None, DESIRED)
    assert created["spec"] == DESIRED["spec"]
    entry = created["metadata"]["managedFields"][0]
    assert {k: entry[k] for k in ("manager", "operation", "apiVersion", "fieldsType", "time")} == {
        "manager": "ctl",
        "operation": "Apply",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "time": "2024-01-01T00:00:00Z",
    }
    assert entry["fieldsV1"] == {
        "f:spec": {
            "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:targetPort": {}}},
            "f:selector": {},
            "f:sessionAffinity": {},
        }
    }


def test_reapplying_the_same_config_changes_nothing() -> None:
    created = ssa(None, DESIRED)
    again = ssa(created, DESIRED, now="2024-02-02T00:00:00Z")
    assert again == created


def test_server_owned_fields_in_the_config_are_ignored() -> None:
    created = ssa(None, DESIRED)
    live = copy.deepcopy(created)
    live["metadata"].update(uid="u1", resourceVersion="7", creationTimestamp="2024-01-01T00:00:00Z", generation=1)
    config = copy.deepcopy(DESIRED)
    config["metadata"].update(uid="other", resourceVersion="1", generation=9, managedFields=[{"manager": "x"}])
    result = ssa(live, config)
    assert result == live


def test_dropping_a_field_from_the_config_removes_it() -> None:
    created = ssa(None, {**DESIRED, "metadata": {**DESIRED["metadata"], "labels": {"a": "1", "b": "2"}}})
    config = copy.deepcopy(DESIRED)
    del config["spec"]["sessionAffinity"]
    config["metadata"]["labels"] = {"a": "1"}
    result = ssa(created, config)
    assert "sessionAffinity" not in result["spec"]
    assert result["metadata"]["labels"] == {"a": "1"}
    assert "f:sessionAffinity" not in fields_of(result, "ctl")["f:spec"]


def test_dropped_field_stays_while_another_manager_owns_it() -> None:
    created = ssa(None, DESIRED)
    shared = ssa(created, service(sessionAffinity="ClientIP"), manager="other")
    config = copy.deepcopy(DESIRED)
    del config["spec"]["sessionAffinity"]
    result = ssa(shared, config)
    assert result["spec"]["sessionAffinity"] == "ClientIP"
    assert fields_of(result, "other") == {"f:spec": {"f:sessionAffinity": {}}}


def test_changing_another_managers_field_conflicts_without_force() -> None:
    created = ssa(None, DESIRED)
    with pytest.raises(apply.ApplyConflict) as raised:
        ssa(created, service(sessionAffinity="None"), manager="other")
    assert raised.value.conflicts == [("ctl", ".spec.sessionAffinity")]


def test_force_takes_the_field_over() -> None:
    created = ssa(None, DESIRED)
    taken = ssa(created, service(sessionAffinity="None"), manager="other", force=True)
    assert taken["spec"]["sessionAffinity"] == "None"
    assert fields_of(taken, "other") == {"f:spec": {"f:sessionAffinity": {}}}
    assert "f:sessionAffinity" not in fields_of(taken, "ctl")["f:spec"]


def test_applying_an_equal_value_shares_ownership() -> None:
    created = ssa(None, DESIRED)
    shared = ssa(created, service(sessionAffinity="ClientIP"), manager="other")
    assert shared["spec"] == created["spec"]
    assert fields_of(shared, "other") == {"f:spec": {"f:sessionAffinity": {}}}
    assert "f:sessionAffinity" in fields_of(shared, "ctl")["f:spec"]


def test_map_list_items_merge_by_key() -> None:
    created = ssa(None, DESIRED)
    other = ssa(created, service(ports=[{"port": 443, "name": "https"}]), manager="other")
    assert [p["port"] for p in other["spec"]["ports"]] == [80, 443]
    changed = ssa(other, service(selector={"app": "web"}, ports=[{"port": 80, "targetPort": 9090}]))
    assert changed["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443, "name": "https"}]
    assert 'k:{"port":443,"protocol":"TCP"}' in fields_of(changed, "other")["f:spec"]["f:ports"]


def test_atomic_lists_and_maps_are_replaced_whole() -> None:
    created = ssa(None, service(selector={"a": "1", "b": "2"}, externalIPs=["1.1.1.1", "2.2.2.2"]))
    result = ssa(created, service(selector={"a": "1"}, externalIPs=["3.3.3.3"]))
    assert result["spec"] == {"selector": {"a": "1"}, "externalIPs": ["3.3.3.3"]}
    assert fields_of(result, "ctl") == {"f:spec": {"f:externalIPs": {}, "f:selector": {}}}


def test_set_lists_union_across_managers() -> None:
    created = ssa(None, {**DESIRED, "metadata": {**DESIRED["metadata"], "finalizers": ["a"]}})
    both = ssa(
        created,
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "finalizers": ["b"]}},
        manager="other",
    )
    assert both["metadata"]["finalizers"] == ["a", "b"]
    assert fields_of(both, "other") == {"f:metadata": {"f:finalizers": {'v:"b"': {}}}}


def test_status_is_isolated_from_the_main_resource() -> None:
    config = {**DESIRED, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}
    created = ssa(None, config)
    assert "f:status" not in fields_of(created, "ctl")
    live = {**created, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    status_apply = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"sessionAffinity": "None"},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }
    updated = ssa(live, status_apply, manager="ctl", subresource="status")
    assert updated["spec"] == created["spec"]
    assert updated["status"]["conditions"] == [{"type": "Ready", "status": "False"}]
    assert fields_of(updated, "ctl", subresource="status") == {
        "f:status": {"f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}}}
    }


def test_labels_and_owner_references_merge_granularly() -> None:
    owner = {"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u1", "controller": True}
    created = ssa(None, {**DESIRED, "metadata": {"name": "web", "labels": {"a": "1"}, "ownerReferences": [owner]}})
    other = ssa(
        created,
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"b": "2"}}},
        manager="other",
    )
    assert other["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert fields_of(other, "ctl")["f:metadata"] == {
        "f:labels": {"f:a": {}},
        "f:ownerReferences": {
            'k:{"uid":"u1"}': {".": {}, "f:apiVersion": {}, "f:controller": {}, "f:kind": {}, "f:name": {}, "f:uid": {}}
        },
    }


def test_apply_with_a_crd_schema_keys_lists_as_the_schema_says() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "v": {"type": "integer"}},
                        },
                    },
                    "args": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    }
    keys = listtypes.schema_list_keys(schema)
    obj = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "a"},
        "spec": {"items": [{"name": "a", "v": 1}], "args": ["x"]},
    }
    created = ssa(None, obj, list_keys=keys)
    assert fields_of(created, "ctl") == {
        "f:spec": {"f:args": {}, "f:items": {'k:{"name":"a"}': {".": {}, "f:name": {}, "f:v": {}}}}
    }


# ------------------------------------------------------------- record_update


def test_create_by_update_owns_every_field_with_parent_markers() -> None:
    created = apply.record_update(
        None,
        {**DESIRED, "metadata": {"name": "web", "labels": {"a": "1"}}},
        manager="kubectl",
        now="T",
        list_keys=SERVICE,
    )
    assert fields_of(created, "kubectl", "Update") == {
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
        "f:spec": {
            "f:ports": {".": {}, 'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:targetPort": {}}},
            "f:selector": {},
            "f:sessionAffinity": {},
        },
    }


def test_update_transfers_changed_fields_without_conflict() -> None:
    applied = ssa(None, DESIRED)
    edited = copy.deepcopy(applied)
    edited["spec"]["sessionAffinity"] = "None"
    updated = apply.record_update(applied, edited, manager="kubectl-edit", now="T2", list_keys=SERVICE)
    assert updated["spec"]["sessionAffinity"] == "None"
    assert fields_of(updated, "kubectl-edit", "Update") == {"f:spec": {"f:sessionAffinity": {}}}
    assert "f:sessionAffinity" not in fields_of(updated, "ctl")["f:spec"]


def test_update_that_removes_fields_drops_them_and_empty_entries() -> None:
    applied = ssa(None, service(sessionAffinity="ClientIP"))
    edited = copy.deepcopy(applied)
    del edited["spec"]["sessionAffinity"]
    updated = apply.record_update(applied, edited, manager="kubectl-edit", now="T2", list_keys=SERVICE)
    assert managers(updated) == []


def test_update_that_changes_nothing_keeps_managed_fields() -> None:
    applied = ssa(None, DESIRED)
    same = apply.record_update(applied, copy.deepcopy(applied), manager="kubectl", now="T9", list_keys=SERVICE)
    assert same["metadata"]["managedFields"] == applied["metadata"]["managedFields"]


def test_inputs_are_never_mutated() -> None:
    live = ssa(None, DESIRED)
    snapshot = json.dumps(live, sort_keys=True)
    config = service(sessionAffinity="None")
    ssa(live, config, manager="other", force=True)
    edited = copy.deepcopy(live)
    edited["spec"]["type"] = "NodePort"
    apply.record_update(live, edited, manager="m", now="T", list_keys=SERVICE)
    assert json.dumps(live, sort_keys=True) == snapshot
    assert config == service(sessionAffinity="None")
