"""Create, read, update, delete: the object-metadata rules every client relies on.

uid and creationTimestamp are the server's, resourceVersion changes on every
write, generation counts spec changes only, and the error answers (404, 409)
carry a Status body a client can act on.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import KubeEnv, status_of

from .objects import ISVC_VERSION, ISVCS, KSERVE, config_map, isvc


def test_create_sets_uid_creation_timestamp_and_resource_version(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.resource_version
    assert created.metadata.namespace == kube.namespace


def test_server_ignores_client_supplied_uid_and_creation_timestamp(kube: KubeEnv) -> None:
    body = config_map("a")
    body.metadata.uid = "not-a-server-uid"
    created = kube.core.create_namespaced_config_map(kube.namespace, body)
    assert created.metadata.uid != "not-a-server-uid"


def test_get_returns_what_create_returned(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_config_map(kube.namespace, config_map("a", data={"x": "1"}))
    got = kube.core.read_namespaced_config_map("a", kube.namespace)
    assert got.metadata.uid == created.metadata.uid
    assert got.metadata.resource_version == created.metadata.resource_version
    assert got.data == {"x": "1"}


def test_list_returns_the_namespace_objects_and_a_resource_version(kube: KubeEnv) -> None:
    for name in ("a", "b", "c"):
        kube.core.create_namespaced_config_map(kube.namespace, config_map(name))
    listed = kube.core.list_namespaced_config_map(kube.namespace)
    names = {item.metadata.name for item in listed.items} - {"kube-root-ca.crt"}
    assert names == {"a", "b", "c"}
    assert listed.metadata.resource_version


def test_list_in_another_namespace_does_not_see_these_objects(kube: KubeEnv) -> None:
    kube.core.create_namespaced_config_map(kube.namespace, config_map("only-here"))
    other = f"{kube.namespace[:55]}-other"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        listed = kube.core.list_namespaced_config_map(other)
        assert "only-here" not in {item.metadata.name for item in listed.items}
    finally:
        kube.core.delete_namespace(other)


def test_update_changes_resource_version_and_keeps_uid(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    created.data = {"k": "changed"}
    updated = kube.core.replace_namespaced_config_map("a", kube.namespace, created)
    assert updated.metadata.uid == created.metadata.uid
    assert updated.metadata.resource_version != created.metadata.resource_version
    assert updated.metadata.creation_timestamp == created.metadata.creation_timestamp
    assert updated.data == {"k": "changed"}


def test_update_with_a_stale_resource_version_is_a_409_conflict(kube: KubeEnv) -> None:
    stale = kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    fresh = kube.core.read_namespaced_config_map("a", kube.namespace)
    fresh.data = {"k": "first"}
    kube.core.replace_namespaced_config_map("a", kube.namespace, fresh)
    stale.data = {"k": "second"}
    with pytest.raises(ApiException) as caught:
        kube.core.replace_namespaced_config_map("a", kube.namespace, stale)
    assert caught.value.status == 409
    status = status_of(caught.value)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    assert kube.core.read_namespaced_config_map("a", kube.namespace).data == {"k": "first"}


def test_update_without_resource_version_overwrites(kube: KubeEnv) -> None:
    kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    updated = kube.core.replace_namespaced_config_map("a", kube.namespace, config_map("a", data={"k": "unconditional"}))
    assert updated.data == {"k": "unconditional"}


def test_create_of_an_existing_name_is_a_409_already_exists(kube: KubeEnv) -> None:
    kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    with pytest.raises(ApiException) as caught:
        kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    assert caught.value.status == 409
    status = status_of(caught.value)
    assert status["kind"] == "Status"
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "a" already exists'
    assert status["details"]["name"] == "a"
    assert status["details"]["kind"] == "configmaps"


def test_get_of_a_missing_object_is_a_404_with_a_status_body(kube: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        kube.core.read_namespaced_config_map("nope", kube.namespace)
    error = caught.value
    assert error.status == 404
    assert error.reason == "Not Found"
    status = status_of(error)
    assert status["kind"] == "Status"
    assert status["apiVersion"] == "v1"
    assert status["status"] == "Failure"
    assert status["reason"] == "NotFound"
    assert status["code"] == 404
    assert status["message"] == 'configmaps "nope" not found'
    assert status["details"] == {"name": "nope", "kind": "configmaps"}


def test_get_of_a_missing_custom_object_names_its_group(kube: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        kube.custom.get_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "nope")
    assert caught.value.status == 404
    status = status_of(caught.value)
    assert status["reason"] == "NotFound"
    assert status["message"] == f'{ISVCS}.{KSERVE} "nope" not found'
    assert status["details"] == {"name": "nope", "group": KSERVE, "kind": ISVCS}


def test_delete_then_get_is_404(kube: KubeEnv) -> None:
    kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    kube.core.delete_namespaced_config_map("a", kube.namespace)
    with pytest.raises(ApiException) as caught:
        kube.core.read_namespaced_config_map("a", kube.namespace)
    assert caught.value.status == 404


def test_delete_of_a_missing_object_is_404(kube: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        kube.core.delete_namespaced_config_map("nope", kube.namespace)
    assert caught.value.status == 404
    assert status_of(caught.value)["reason"] == "NotFound"


def test_recreated_object_gets_a_new_uid(kube: KubeEnv) -> None:
    first = kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    kube.core.delete_namespaced_config_map("a", kube.namespace)
    second = kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    assert second.metadata.uid != first.metadata.uid


# --- generation: custom resources count spec changes -------------------------


def _create_isvc(kube: KubeEnv, name: str = "m") -> dict:  # type: ignore[type-arg]
    return kube.custom.create_namespaced_custom_object(  # type: ignore[no-any-return]
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, isvc(name)
    )


def _merge_patch(kube: KubeEnv, body: dict, subresource: str = "") -> dict:  # type: ignore[type-arg]
    patch = (
        kube.custom.patch_namespaced_custom_object_status
        if subresource == "status"
        else kube.custom.patch_namespaced_custom_object
    )
    return patch(  # type: ignore[no-any-return]
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m", body,
        _content_type="application/merge-patch+json",
    )  # fmt: skip


def test_a_new_custom_object_has_generation_1(kube: KubeEnv) -> None:
    assert _create_isvc(kube)["metadata"]["generation"] == 1


def test_generation_bumps_on_a_spec_change(kube: KubeEnv) -> None:
    _create_isvc(kube)
    patched = _merge_patch(kube, {"spec": {"predictor": {"minReplicas": 2}}})
    assert patched["metadata"]["generation"] == 2


def test_generation_stays_on_a_metadata_change(kube: KubeEnv) -> None:
    _create_isvc(kube)
    patched = _merge_patch(kube, {"metadata": {"labels": {"team": "a"}, "annotations": {"x": "y"}}})
    assert patched["metadata"]["generation"] == 1
    assert patched["metadata"]["labels"] == {"team": "a"}


def test_generation_stays_on_a_status_change(kube: KubeEnv) -> None:
    _create_isvc(kube)
    patched = _merge_patch(kube, {"status": {"url": "http://m.example.com"}}, "status")
    assert patched["metadata"]["generation"] == 1
    assert patched["status"]["url"] == "http://m.example.com"


def test_generation_stays_when_a_spec_write_changes_nothing(kube: KubeEnv) -> None:
    _create_isvc(kube)
    patched = _merge_patch(kube, {"spec": {"predictor": {"minReplicas": 1}}})
    assert patched["metadata"]["generation"] == 1


def test_resource_version_changes_on_every_kind_of_write(kube: KubeEnv) -> None:
    versions = [_create_isvc(kube)["metadata"]["resourceVersion"]]
    versions.append(_merge_patch(kube, {"metadata": {"labels": {"a": "1"}}})["metadata"]["resourceVersion"])
    versions.append(_merge_patch(kube, {"status": {"url": "http://x"}}, "status")["metadata"]["resourceVersion"])
    versions.append(_merge_patch(kube, {"spec": {"predictor": {"minReplicas": 3}}})["metadata"]["resourceVersion"])
    assert len(set(versions)) == len(versions)


def test_a_write_that_changes_nothing_keeps_the_resource_version(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_config_map(kube.namespace, config_map("a", data={"x": "1"}))
    patched = kube.core.patch_namespaced_config_map(
        "a", kube.namespace, {"data": {"x": "1"}}, _content_type="application/merge-patch+json"
    )
    assert patched.metadata.resource_version == created.metadata.resource_version


def _isvc_of_size(name: str, size: int) -> dict[str, Any]:
    body = isvc(name)
    chunk = 200_000
    body["spec"]["predictor"]["model"]["env"] = [
        {"name": f"PAD{i}", "value": "x" * chunk} for i in range(size // chunk)
    ]
    return body


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (1_600_000, "etcdserver: request is too large"),
        (2_200_000, "trying to send message larger than max"),
    ],
    ids=["past-etcds-limit", "past-the-etcd-clients-limit"],
)
def test_an_object_bigger_than_etcd_takes_is_refused_and_not_stored(kube: KubeEnv, size: int, message: str) -> None:
    """What a controller meets when it lets an object grow: every write of it
    fails (a 500, retried to no avail) while smaller ones still land."""
    custom = kube.custom
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, _isvc_of_size("big", size))
    assert refused.value.status == 500
    assert message in status_of(refused.value)["message"]
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "big")
    assert missing.value.status == 404
    custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, _isvc_of_size("small", 1_200_000))


def test_a_request_body_past_three_mebibytes_is_refused_with_413(kube: KubeEnv) -> None:
    with pytest.raises(ApiException) as refused:
        kube.custom.create_namespaced_custom_object(
            KSERVE, ISVC_VERSION, kube.namespace, ISVCS, _isvc_of_size("huge", 3_400_000)
        )
    assert refused.value.status == 413
    status = status_of(refused.value)
    assert (status["reason"], status["message"]) == ("RequestEntityTooLarge", "Request entity too large: limit is 3145728")
