"""Server-side apply: field ownership by manager.

The controller writes every child with SSA (SPEC "Safety"), relying on:
create when absent, no write when nothing changed, removal of a field it
stops sending, a 409 instead of silently overwriting another manager's
field, and ``force`` to take a field over.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import KubeEnv, status_of

from .objects import ISVC_VERSION, ISVCS, KSERVE, isvc

APPLY = "application/apply-patch+yaml"


def _cm(name: str = "a", data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    if data is not None:
        body["data"] = data
    return body


def _apply(kube: KubeEnv, body: dict[str, Any], manager: str | None, force: bool | None = None) -> Any:
    return kube.core.patch_namespaced_config_map(
        body["metadata"]["name"], kube.namespace, body,
        field_manager=manager, force=force, _content_type=APPLY,
    )  # fmt: skip


def _managers(obj: Any) -> dict[str, Any]:
    """manager -> (operation, fieldsV1) from managedFields."""
    return {entry.manager: (entry.operation, entry.fields_v1) for entry in obj.metadata.managed_fields or []}


def test_apply_creates_an_absent_object(kube: KubeEnv) -> None:
    applied = _apply(kube, _cm(data={"x": "1"}), "a")
    assert applied.metadata.uid
    assert kube.core.read_namespaced_config_map("a", kube.namespace).data == {"x": "1"}
    operation, fields = _managers(applied)["a"]
    assert operation == "Apply"
    assert fields == {"f:data": {"f:x": {}}}


def test_apply_without_a_field_manager_is_rejected(kube: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        _apply(kube, _cm(data={"x": "1"}), None)
    assert caught.value.status == 422
    status = status_of(caught.value)
    assert status["reason"] == "Invalid"
    assert "fieldManager: Required value" in status["message"]


def test_reapplying_the_same_config_writes_nothing(kube: KubeEnv) -> None:
    first = _apply(kube, _cm(data={"x": "1"}, labels={"l": "v"}), "a")
    second = _apply(kube, _cm(data={"x": "1"}, labels={"l": "v"}), "a")
    assert second.metadata.resource_version == first.metadata.resource_version


def test_reapplying_with_force_writes_nothing_either(kube: KubeEnv) -> None:
    first = _apply(kube, _cm(data={"x": "1"}), "a", force=True)
    second = _apply(kube, _cm(data={"x": "1"}), "a", force=True)
    assert second.metadata.resource_version == first.metadata.resource_version


def test_apply_of_a_changed_value_updates_it(kube: KubeEnv) -> None:
    _apply(kube, _cm(data={"x": "1"}), "a")
    assert _apply(kube, _cm(data={"x": "2"}), "a").data == {"x": "2"}


def test_a_field_dropped_from_the_applied_config_is_removed(kube: KubeEnv) -> None:
    _apply(kube, _cm(data={"x": "1", "y": "2"}, labels={"keep": "1", "drop": "1"}), "a")
    applied = _apply(kube, _cm(data={"x": "1"}, labels={"keep": "1"}), "a")
    assert applied.data == {"x": "1"}
    assert applied.metadata.labels == {"keep": "1"}


def test_a_dropped_field_another_manager_also_owns_stays(kube: KubeEnv) -> None:
    _apply(kube, _cm(data={"x": "1", "y": "2"}), "a")
    _apply(kube, _cm(data={"x": "1"}), "b")  # same value: shared ownership, no conflict
    applied = _apply(kube, _cm(data={"y": "2"}), "a")
    assert applied.data == {"x": "1", "y": "2"}


def test_a_field_set_by_update_survives_an_apply_that_never_set_it(kube: KubeEnv) -> None:
    _apply(kube, _cm(data={"x": "1"}), "a")
    kube.core.patch_namespaced_config_map(
        "a", kube.namespace, {"data": {"other": "z"}},
        field_manager="editor", _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert _apply(kube, _cm(data={"x": "2"}), "a").data == {"x": "2", "other": "z"}


def test_two_managers_setting_one_field_differently_conflict(kube: KubeEnv) -> None:
    _apply(kube, _cm(data={"x": "1"}), "a")
    with pytest.raises(ApiException) as caught:
        _apply(kube, _cm(data={"x": "2"}), "b")
    assert caught.value.status == 409
    status = status_of(caught.value)
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "a": .data.x'
    causes = status["details"]["causes"]
    assert causes == [{"reason": "FieldManagerConflict", "message": 'conflict with "a"', "field": ".data.x"}]
    assert kube.core.read_namespaced_config_map("a", kube.namespace).data == {"x": "1"}


def test_apply_conflicts_with_a_field_an_update_set(kube: KubeEnv) -> None:
    _apply(kube, _cm(data={"x": "1"}), "a")
    kube.core.patch_namespaced_config_map(
        "a", kube.namespace, {"data": {"x": "edited"}},
        field_manager="editor", _content_type="application/merge-patch+json",
    )  # fmt: skip
    with pytest.raises(ApiException) as caught:
        _apply(kube, _cm(data={"x": "1"}), "a")
    assert caught.value.status == 409
    assert 'conflict with "editor"' in status_of(caught.value)["message"]


def test_force_takes_a_field_over(kube: KubeEnv) -> None:
    _apply(kube, _cm(data={"x": "1", "y": "1"}), "a")
    taken = _apply(kube, _cm(data={"x": "2"}), "b", force=True)
    assert taken.data == {"x": "2", "y": "1"}
    managers = _managers(taken)
    assert managers["b"][1] == {"f:data": {"f:x": {}}}
    assert managers["a"][1] == {"f:data": {"f:y": {}}}


def test_a_manager_that_lost_all_its_fields_leaves_managed_fields(kube: KubeEnv) -> None:
    _apply(kube, _cm(data={"x": "1"}), "a")
    taken = _apply(kube, _cm(data={"x": "2"}), "b", force=True)
    assert "a" not in _managers(taken)


def test_managed_fields_hold_one_entry_per_manager_and_operation(kube: KubeEnv) -> None:
    _apply(kube, _cm(data={"x": "1"}), "a")
    kube.core.patch_namespaced_config_map(
        "a", kube.namespace, {"metadata": {"labels": {"edited": "yes"}}},
        field_manager="editor", _content_type="application/merge-patch+json",
    )  # fmt: skip
    stored = kube.core.read_namespaced_config_map("a", kube.namespace)
    entries = {(e.manager, e.operation) for e in stored.metadata.managed_fields}
    assert entries == {("a", "Apply"), ("editor", "Update")}
    for entry in stored.metadata.managed_fields:
        assert entry.api_version == "v1"
        assert entry.fields_type == "FieldsV1"
        assert entry.time is not None
    editor = next(e for e in stored.metadata.managed_fields if e.manager == "editor")
    assert "f:edited" in editor.fields_v1["f:metadata"]["f:labels"]


def test_apply_with_a_different_name_than_the_url_is_rejected(kube: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        kube.core.patch_namespaced_config_map(
            "a", kube.namespace, _cm("b", data={"x": "1"}),
            field_manager="a", _content_type=APPLY,
        )  # fmt: skip
    assert caught.value.status == 400


def test_apply_merges_list_items_by_key_across_managers(kube: KubeEnv) -> None:
    def service(port: int, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"ports": [{"name": name, "port": port, "protocol": "TCP"}]},
        }

    def apply(body: dict[str, Any], manager: str) -> Any:
        return kube.core.patch_namespaced_service("s", kube.namespace, body, field_manager=manager, _content_type=APPLY)

    apply(service(80, "http"), "a")
    merged = apply(service(81, "admin"), "b")
    assert sorted(p.port for p in merged.spec.ports) == [80, 81]


# --- SSA on a custom resource ----------------------------------------------


def _apply_isvc(kube: KubeEnv, body: dict[str, Any], manager: str = "a") -> dict[str, Any]:
    # Raw JSON: the client maps only 200 to a body for custom objects, and an
    # apply that creates answers 201.
    response = kube.custom.patch_namespaced_custom_object(
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, body["metadata"]["name"], body,
        field_manager=manager, force=True, _content_type=APPLY, _preload_content=False,
    )  # fmt: skip
    return json.loads(response.data)  # type: ignore[no-any-return]


def test_apply_of_a_custom_resource_creates_then_is_idempotent(kube: KubeEnv) -> None:
    first = _apply_isvc(kube, isvc("m", labels={"disvc": "d"}))
    assert first["metadata"]["generation"] == 1
    second = _apply_isvc(kube, isvc("m", labels={"disvc": "d"}))
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_apply_of_a_custom_resource_removes_a_dropped_nested_field(kube: KubeEnv) -> None:
    body = isvc("m")
    body["spec"]["predictor"]["model"]["args"] = ["--model_name=m"]
    _apply_isvc(kube, body)
    applied = _apply_isvc(kube, isvc("m"))
    assert "args" not in applied["spec"]["predictor"]["model"]
    assert applied["metadata"]["generation"] == 2


def _service(name: str, selector: dict[str, str], owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if owners is not None:
        metadata["ownerReferences"] = owners
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def _owner(uid: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "DistributedInferenceService",
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_apply_without_force_over_an_object_created_by_someone_else_conflicts_and_changes_nothing(
    kube: KubeEnv,
) -> None:
    # The controller creates children this way: a name held by a foreign
    # object must be refused, not taken over.
    kube.core.create_namespaced_service(kube.namespace, _service("web", {"app": "theirs"}))
    before = kube.core.read_namespaced_service("web", kube.namespace)
    ours = _service("web", {"disvc": "web"})
    ours["metadata"]["labels"] = {"disvc": "web"}

    with pytest.raises(ApiException) as caught:
        kube.core.patch_namespaced_service(
            "web", kube.namespace, ours, field_manager="disvc-controller", _content_type=APPLY
        )

    assert caught.value.status == 409
    assert ".spec.selector" in status_of(caught.value)["message"]
    after = kube.core.read_namespaced_service("web", kube.namespace)
    assert after.metadata.resource_version == before.metadata.resource_version
    assert after.metadata.labels is None


def test_apply_with_a_resource_version_no_object_has_creates_only(kube: KubeEnv) -> None:
    # The controller creates the DISVC-level Service and Ingress this way: an
    # absent name is created with apply ownership, a held one is refused
    # whatever holds it (here an object whose fields ours would not touch,
    # which an apply without the precondition would merge into).
    create_only = _cm(data={"x": "1"})
    create_only["metadata"]["resourceVersion"] = "1"
    applied = _apply(kube, create_only, "a")
    assert _managers(applied)["a"][0] == "Apply"

    kube.core.create_namespaced_config_map(kube.namespace, _cm("held", labels={"theirs": "1"}))
    before = kube.core.read_namespaced_config_map("held", kube.namespace)
    taken = _cm("held", data={"x": "1"})
    taken["metadata"]["resourceVersion"] = "1"
    with pytest.raises(ApiException) as caught:
        _apply(kube, taken, "a")
    assert caught.value.status == 409
    after = kube.core.read_namespaced_config_map("held", kube.namespace)
    assert after.metadata.resource_version == before.metadata.resource_version


def test_a_field_a_create_set_survives_an_apply_by_the_same_manager_that_drops_it(kube: KubeEnv) -> None:
    # Why the controller does not POST what it later applies: the POST's
    # fields stay owned by an Update entry that no apply removes.
    kube.core.create_namespaced_config_map(kube.namespace, _cm(data={"x": "1", "y": "2"}), field_manager="a")
    _apply(kube, _cm(data={"x": "1", "y": "2"}), "a", force=True)
    applied = _apply(kube, _cm(data={"x": "1"}), "a", force=True)
    assert applied.data == {"x": "1", "y": "2"}


def test_an_object_can_have_only_one_controller_owner(kube: KubeEnv) -> None:
    owners = [_owner("11111111-1111-1111-1111-111111111111", "a"), _owner("22222222-2222-2222-2222-222222222222", "b")]
    with pytest.raises(ApiException) as caught:
        kube.core.create_namespaced_service(kube.namespace, _service("web", {"app": "x"}, owners))
    assert caught.value.status == 422
    assert "Only one reference can have Controller set to true" in status_of(caught.value)["message"]
