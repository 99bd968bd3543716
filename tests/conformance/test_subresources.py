"""Status and scale subresources of custom resources.

With a status subresource, the main endpoint ignores ``status`` and the
``/status`` endpoint ignores everything else: the controller owns status,
users own spec, and neither can clobber the other. The DISVC's scale
subresource is what ``kubectl scale`` and autoscalers write.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import KubeEnv

from .objects import DISVC_VERSION, DISVCS, ISVC_VERSION, ISVCS, KSERVE, disvc, isvc

MERGE = "application/merge-patch+json"


def _isvc_with_status(kube: KubeEnv) -> dict[str, Any]:
    kube.custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, isvc("m"))
    return kube.custom.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m",
        {"status": {"url": "http://original"}}, _content_type=MERGE,
    )  # fmt: skip


def _get(kube: KubeEnv) -> dict[str, Any]:
    return kube.custom.get_namespaced_custom_object(  # type: ignore[no-any-return]
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m"
    )


def test_create_drops_the_status_a_client_sends(kube: KubeEnv) -> None:
    body = {**isvc("m"), "status": {"url": "http://forged"}}
    created = kube.custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, body)
    assert "url" not in (created.get("status") or {})


def test_main_endpoint_ignores_status_changes(kube: KubeEnv) -> None:
    live = _isvc_with_status(kube)
    live["status"]["url"] = "http://overwritten"
    live["spec"]["predictor"]["minReplicas"] = 4
    updated = kube.custom.replace_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m", live)
    assert updated["status"]["url"] == "http://original"
    assert updated["spec"]["predictor"]["minReplicas"] == 4
    assert _get(kube)["status"]["url"] == "http://original"


def test_main_endpoint_patch_ignores_status(kube: KubeEnv) -> None:
    _isvc_with_status(kube)
    kube.custom.patch_namespaced_custom_object(
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m",
        {"status": {"url": "http://patched"}}, _content_type=MERGE,
    )  # fmt: skip
    assert _get(kube)["status"]["url"] == "http://original"


def test_status_endpoint_ignores_spec_and_metadata_changes(kube: KubeEnv) -> None:
    live = _isvc_with_status(kube)
    live["status"]["url"] = "http://new"
    live["spec"]["predictor"]["minReplicas"] = 9
    live["metadata"]["labels"] = {"sneaked": "in"}
    updated = kube.custom.replace_namespaced_custom_object_status(
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m", live
    )
    assert updated["status"]["url"] == "http://new"
    assert updated["spec"]["predictor"]["minReplicas"] == 1
    assert "sneaked" not in (updated["metadata"].get("labels") or {})
    stored = _get(kube)
    assert stored["spec"]["predictor"]["minReplicas"] == 1
    assert stored["metadata"]["generation"] == 1


def test_status_update_with_a_stale_resource_version_is_409(kube: KubeEnv) -> None:
    stale = _isvc_with_status(kube)
    kube.custom.patch_namespaced_custom_object(
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m",
        {"metadata": {"labels": {"bump": "1"}}}, _content_type=MERGE,
    )  # fmt: skip
    stale["status"]["url"] = "http://late"
    with pytest.raises(ApiException) as caught:
        kube.custom.replace_namespaced_custom_object_status(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m", stale)
    assert caught.value.status == 409


def test_status_of_a_missing_object_is_404(kube: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        kube.custom.get_namespaced_custom_object_status(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "nope")
    assert caught.value.status == 404


# --- scale, on the DISVC CRD ---------------------------------------------------


def _create_disvc(kube: KubeEnv, replicas: int) -> dict[str, Any]:
    return kube.custom.create_namespaced_custom_object(  # type: ignore[no-any-return]
        KSERVE, DISVC_VERSION, kube.namespace, DISVCS, disvc("d", replicas)
    )


@pytest.mark.usefixtures("disvc_crd")
def test_scale_reads_spec_replicas(kube: KubeEnv) -> None:
    _create_disvc(kube, 2)
    scale = kube.custom.get_namespaced_custom_object_scale(KSERVE, DISVC_VERSION, kube.namespace, DISVCS, "d")
    assert scale["kind"] == "Scale"
    assert scale["apiVersion"] == "autoscaling/v1"
    assert scale["metadata"]["name"] == "d"
    assert scale["spec"]["replicas"] == 2


@pytest.mark.usefixtures("disvc_crd")
def test_scale_reports_status_replicas_and_selector(kube: KubeEnv) -> None:
    _create_disvc(kube, 2)
    kube.custom.patch_namespaced_custom_object_status(
        KSERVE, DISVC_VERSION, kube.namespace, DISVCS, "d",
        {"status": {"replicas": 2, "selector": "disvc=d"}}, _content_type=MERGE,
    )  # fmt: skip
    scale = kube.custom.get_namespaced_custom_object_scale(KSERVE, DISVC_VERSION, kube.namespace, DISVCS, "d")
    assert scale["status"]["replicas"] == 2
    assert scale["status"]["selector"] == "disvc=d"


@pytest.mark.usefixtures("disvc_crd")
def test_patching_scale_sets_spec_replicas_and_bumps_generation(kube: KubeEnv) -> None:
    _create_disvc(kube, 1)
    kube.custom.patch_namespaced_custom_object_scale(
        KSERVE, DISVC_VERSION, kube.namespace, DISVCS, "d",
        {"spec": {"replicas": 3}}, _content_type=MERGE,
    )  # fmt: skip
    stored = kube.custom.get_namespaced_custom_object(KSERVE, DISVC_VERSION, kube.namespace, DISVCS, "d")
    assert stored["spec"]["replicas"] == 3
    assert stored["metadata"]["generation"] == 2


@pytest.mark.usefixtures("disvc_crd")
def test_replacing_scale_sets_spec_replicas(kube: KubeEnv) -> None:
    _create_disvc(kube, 1)
    scale = kube.custom.get_namespaced_custom_object_scale(KSERVE, DISVC_VERSION, kube.namespace, DISVCS, "d")
    scale["spec"]["replicas"] = 0
    kube.custom.replace_namespaced_custom_object_scale(KSERVE, DISVC_VERSION, kube.namespace, DISVCS, "d", scale)
    stored = kube.custom.get_namespaced_custom_object(KSERVE, DISVC_VERSION, kube.namespace, DISVCS, "d")
    assert stored["spec"]["replicas"] == 0


@pytest.mark.usefixtures("disvc_crd")
def test_scale_to_a_negative_count_is_rejected(kube: KubeEnv) -> None:
    _create_disvc(kube, 1)
    with pytest.raises(ApiException) as caught:
        kube.custom.patch_namespaced_custom_object_scale(
            KSERVE, DISVC_VERSION, kube.namespace, DISVCS, "d",
            {"spec": {"replicas": -1}}, _content_type=MERGE,
        )  # fmt: skip
    assert caught.value.status == 422
