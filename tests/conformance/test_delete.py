"""Delete: preconditions and finalizers.

A delete can be made conditional on the uid (this exact object, not a
namesake created since) or the resourceVersion; a mismatch is a 409 and the
object stays. Finalizers turn a delete into "mark for deletion": the object
remains, with ``deletionTimestamp`` set, until the last finalizer is removed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import KubeEnv, eventually, status_of

from .objects import ISVC_VERSION, ISVCS, KSERVE, config_map, isvc

FINALIZER = "conformance.disvc.io/hold"


def _delete(kube: KubeEnv, name: str, **preconditions: str) -> None:
    kube.core.delete_namespaced_config_map(
        name, kube.namespace, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(**preconditions))
    )


def _exists(kube: KubeEnv, name: str) -> bool:
    try:
        kube.core.read_namespaced_config_map(name, kube.namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_delete_with_a_mismatched_uid_precondition_is_409(kube: KubeEnv) -> None:
    kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    with pytest.raises(ApiException) as caught:
        _delete(kube, "a", uid="00000000-0000-0000-0000-000000000000")
    assert caught.value.status == 409
    status = status_of(caught.value)
    assert status["reason"] == "Conflict"
    live_uid = kube.core.read_namespaced_config_map("a", kube.namespace).metadata.uid
    assert status["message"] == (
        'Operation cannot be fulfilled on ConfigMap "a": the UID in the precondition '
        f"(00000000-0000-0000-0000-000000000000) does not match the UID in record ({live_uid}). "
        "The object might have been deleted and then recreated"
    )
    assert _exists(kube, "a")


def test_delete_with_the_matching_uid_removes_the_object(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    _delete(kube, "a", uid=created.metadata.uid)
    assert not _exists(kube, "a")


def test_delete_guarded_by_uid_spares_a_recreated_namesake(kube: KubeEnv) -> None:
    old = kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    kube.core.delete_namespaced_config_map("a", kube.namespace)
    kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    with pytest.raises(ApiException) as caught:
        _delete(kube, "a", uid=old.metadata.uid)
    assert caught.value.status == 409
    assert _exists(kube, "a")


def test_delete_with_a_stale_resource_version_precondition_is_409(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    kube.core.patch_namespaced_config_map(
        "a", kube.namespace, {"data": {"k": "changed"}}, _content_type="application/merge-patch+json"
    )
    with pytest.raises(ApiException) as caught:
        _delete(kube, "a", resource_version=created.metadata.resource_version)
    assert caught.value.status == 409
    assert _exists(kube, "a")


@pytest.fixture
def release_finalizers(kube: KubeEnv) -> Iterator[None]:
    """Strip finalizers from config map ``a`` after the test: on a real
    cluster a held object would keep the test namespace Terminating."""
    yield
    try:
        kube.core.patch_namespaced_config_map(
            "a", kube.namespace, {"metadata": {"finalizers": None}}, _content_type="application/merge-patch+json"
        )
    except ApiException as error:
        if error.status != 404:
            raise


@pytest.mark.usefixtures("release_finalizers")
def test_finalizer_keeps_a_deleted_object_with_a_deletion_timestamp(kube: KubeEnv) -> None:
    body = config_map("a")
    body.metadata.finalizers = [FINALIZER]
    kube.core.create_namespaced_config_map(kube.namespace, body)
    kube.core.delete_namespaced_config_map("a", kube.namespace)
    held = kube.core.read_namespaced_config_map("a", kube.namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == [FINALIZER]


def test_removing_the_last_finalizer_completes_the_delete(kube: KubeEnv) -> None:
    body = config_map("a")
    body.metadata.finalizers = [FINALIZER]
    kube.core.create_namespaced_config_map(kube.namespace, body)
    kube.core.delete_namespaced_config_map("a", kube.namespace)
    kube.core.patch_namespaced_config_map(
        "a", kube.namespace, {"metadata": {"finalizers": None}}, _content_type="application/merge-patch+json"
    )

    def gone() -> None:
        assert not _exists(kube, "a")

    eventually(gone)


@pytest.mark.usefixtures("release_finalizers")
def test_no_finalizer_can_be_added_to_an_object_being_deleted(kube: KubeEnv) -> None:
    body = config_map("a")
    body.metadata.finalizers = [FINALIZER]
    kube.core.create_namespaced_config_map(kube.namespace, body)
    kube.core.delete_namespaced_config_map("a", kube.namespace)
    with pytest.raises(ApiException) as caught:
        kube.core.patch_namespaced_config_map(
            "a", kube.namespace, {"metadata": {"finalizers": [FINALIZER, "conformance.disvc.io/late"]}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
    assert caught.value.status == 422


def test_finalizer_holds_a_custom_resource_too(kube: KubeEnv) -> None:
    body = isvc("m")
    body["metadata"]["finalizers"] = [FINALIZER]
    kube.custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, body)
    kube.custom.delete_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m")
    held = kube.custom.get_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m")
    assert held["metadata"]["deletionTimestamp"]
    kube.custom.patch_namespaced_custom_object(
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m",
        [{"op": "remove", "path": "/metadata/finalizers"}],
        _content_type="application/json-patch+json",
    )  # fmt: skip

    def gone() -> None:
        try:
            kube.custom.get_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m")
        except ApiException as error:
            assert error.status == 404
            return
        raise AssertionError("still there")

    eventually(gone)
