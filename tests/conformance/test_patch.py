"""The three non-apply patch types, on a Service.

JSON merge patch (RFC 7386) replaces lists and deletes keys set to null;
JSON patch (RFC 6902) applies operations in order; strategic merge patch
merges lists by their key (``port`` for Service ports) and understands
``$patch`` directives. Users reach for all three (``kubectl patch``).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import KubeEnv

from .objects import ISVC_VERSION, ISVCS, KSERVE, isvc

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


@pytest.fixture
def service(kube: KubeEnv) -> client.V1Service:
    return kube.core.create_namespaced_service(
        kube.namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="s", labels={"a": "1", "b": "2"}),
            spec=client.V1ServiceSpec(
                selector={"app": "s"},
                ports=[client.V1ServicePort(name="http", port=80, target_port=8080)],
            ),
        ),
    )


def _patch(kube: KubeEnv, body: Any, content_type: str) -> client.V1Service:
    return kube.core.patch_namespaced_service("s", kube.namespace, body, _content_type=content_type)


def _ports(service: client.V1Service) -> list[tuple[str, int]]:
    return sorted((port.name, port.port) for port in service.spec.ports)


def test_merge_patch_sets_and_deletes_keys(kube: KubeEnv, service: client.V1Service) -> None:
    patched = _patch(kube, {"metadata": {"labels": {"a": None, "c": "3"}}}, MERGE)
    assert patched.metadata.labels == {"b": "2", "c": "3"}


def test_merge_patch_replaces_a_whole_list(kube: KubeEnv, service: client.V1Service) -> None:
    patched = _patch(kube, {"spec": {"ports": [{"name": "admin", "port": 81}]}}, MERGE)
    assert _ports(patched) == [("admin", 81)]


def test_merge_patch_keeps_fields_it_does_not_name(kube: KubeEnv, service: client.V1Service) -> None:
    patched = _patch(kube, {"spec": {"sessionAffinity": "ClientIP"}}, MERGE)
    assert patched.spec.session_affinity == "ClientIP"
    assert patched.spec.selector == {"app": "s"}
    assert patched.spec.cluster_ip == service.spec.cluster_ip


def test_json_patch_applies_operations_in_order(kube: KubeEnv, service: client.V1Service) -> None:
    patched = _patch(
        kube,
        [
            {"op": "add", "path": "/metadata/labels/c", "value": "3"},
            {"op": "remove", "path": "/metadata/labels/a"},
            {"op": "replace", "path": "/spec/ports/0/port", "value": 8000},
            {"op": "add", "path": "/spec/ports/-", "value": {"name": "admin", "port": 81}},
        ],
        JSON_PATCH,
    )
    assert patched.metadata.labels == {"b": "2", "c": "3"}
    assert _ports(patched) == [("admin", 81), ("http", 8000)]


def test_json_patch_with_a_failing_test_op_changes_nothing(kube: KubeEnv, service: client.V1Service) -> None:
    with pytest.raises(ApiException) as caught:
        _patch(
            kube,
            [
                {"op": "replace", "path": "/metadata/labels/a", "value": "changed"},
                {"op": "test", "path": "/metadata/labels/b", "value": "not-2"},
            ],
            JSON_PATCH,
        )
    assert caught.value.status == 422
    stored = kube.core.read_namespaced_service("s", kube.namespace)
    assert stored.metadata.labels == {"a": "1", "b": "2"}


def test_json_patch_removing_a_missing_path_is_rejected(kube: KubeEnv, service: client.V1Service) -> None:
    with pytest.raises(ApiException) as caught:
        _patch(kube, [{"op": "remove", "path": "/metadata/labels/nope"}], JSON_PATCH)
    assert caught.value.status == 422


def test_strategic_merge_patch_merges_ports_by_key(kube: KubeEnv, service: client.V1Service) -> None:
    patched = _patch(kube, {"spec": {"ports": [{"name": "admin", "port": 81}]}}, STRATEGIC)
    assert _ports(patched) == [("admin", 81), ("http", 80)]


def test_strategic_merge_patch_updates_the_item_with_the_same_key(kube: KubeEnv, service: client.V1Service) -> None:
    patched = _patch(kube, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, STRATEGIC)
    assert len(patched.spec.ports) == 1
    assert patched.spec.ports[0].target_port == 9090
    assert patched.spec.ports[0].name == "http"


def test_strategic_merge_patch_delete_directive_removes_one_item(kube: KubeEnv, service: client.V1Service) -> None:
    _patch(kube, {"spec": {"ports": [{"name": "admin", "port": 81}]}}, STRATEGIC)
    patched = _patch(kube, {"spec": {"ports": [{"port": 80, "$patch": "delete"}]}}, STRATEGIC)
    assert _ports(patched) == [("admin", 81)]


def test_strategic_merge_patch_on_a_custom_resource_is_unsupported(kube: KubeEnv) -> None:
    kube.custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, isvc("m"))
    with pytest.raises(ApiException) as caught:
        kube.custom.patch_namespaced_custom_object(
            KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m",
            {"metadata": {"labels": {"a": "1"}}}, _content_type=STRATEGIC,
        )  # fmt: skip
    assert caught.value.status == 415


def test_patch_of_a_missing_object_is_404(kube: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        kube.core.patch_namespaced_service("nope", kube.namespace, {"metadata": {}}, _content_type=MERGE)
    assert caught.value.status == 404
