"""Validation: what the server refuses, and how it says so.

A CRD's OpenAPI schema and CEL rules are enforced on every write with a 422
``Invalid`` Status that names the kind, the object and each offending field
(``details.causes``); unknown fields are pruned. The controller and its
users read these messages, so their shape matters as much as the code.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import KubeEnv, needs_kserve_schema, status_of

from .objects import DISVC_VERSION, DISVCS, ISVC_VERSION, ISVCS, KSERVE, config_map, disvc, isvc


def _rejected_isvc(kube: KubeEnv, body: dict[str, Any], **kwargs: Any) -> ApiException:
    with pytest.raises(ApiException) as caught:
        kube.custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, body, **kwargs)
    return caught.value


def _rejected_disvc(kube: KubeEnv, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        kube.custom.create_namespaced_custom_object(KSERVE, DISVC_VERSION, kube.namespace, DISVCS, body)
    assert caught.value.status == 422
    return status_of(caught.value)


def _cause_fields(status: dict[str, Any]) -> list[str]:
    return [cause.get("field") for cause in status["details"].get("causes", [])]


@needs_kserve_schema
def test_wrong_type_on_an_isvc_is_422_naming_the_field(kube: KubeEnv) -> None:
    body = isvc("m")
    body["spec"]["predictor"]["minReplicas"] = "two"
    error = _rejected_isvc(kube, body)
    assert error.status == 422
    status = status_of(error)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('InferenceService.serving.kserve.io "m" is invalid: ')
    assert "spec.predictor.minReplicas" in status["message"]
    assert "must be of type integer" in status["message"]
    assert status["details"]["name"] == "m"
    assert status["details"]["group"] == KSERVE
    assert status["details"]["kind"] == "InferenceService"
    assert "spec.predictor.minReplicas" in _cause_fields(status)


@needs_kserve_schema
def test_missing_required_field_on_an_isvc_is_422(kube: KubeEnv) -> None:
    body = isvc("m")
    del body["spec"]["predictor"]
    status = status_of(_rejected_isvc(kube, body))
    assert status["reason"] == "Invalid"
    assert "spec.predictor: Required value" in status["message"]
    causes = status["details"]["causes"]
    assert {"reason": "FieldValueRequired", "field": "spec.predictor"}.items() <= causes[0].items()


@needs_kserve_schema
def test_rejected_create_stores_nothing(kube: KubeEnv) -> None:
    body = isvc("m")
    body["spec"]["predictor"]["minReplicas"] = "two"
    _rejected_isvc(kube, body)
    with pytest.raises(ApiException) as caught:
        kube.custom.get_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m")
    assert caught.value.status == 404


@needs_kserve_schema
def test_invalid_update_is_rejected_and_leaves_the_object_unchanged(kube: KubeEnv) -> None:
    kube.custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, isvc("m"))
    with pytest.raises(ApiException) as caught:
        kube.custom.patch_namespaced_custom_object(
            KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m",
            {"spec": {"predictor": {"minReplicas": "two"}}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
    assert caught.value.status == 422
    stored = kube.custom.get_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m")
    assert stored["spec"]["predictor"]["minReplicas"] == 1
    assert stored["metadata"]["generation"] == 1


@needs_kserve_schema
def test_unknown_fields_are_pruned(kube: KubeEnv) -> None:
    body = isvc("m")
    body["spec"]["notAField"] = "dropped"
    created = kube.custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, body)
    assert "notAField" not in created["spec"]
    stored = kube.custom.get_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m")
    assert "notAField" not in stored["spec"]


@needs_kserve_schema
def test_unknown_fields_with_strict_field_validation_are_a_400(kube: KubeEnv) -> None:
    body = isvc("m")
    body["spec"]["notAField"] = "refused"
    error = _rejected_isvc(kube, body, field_validation="Strict")
    assert error.status == 400
    assert "notAField" in status_of(error)["message"]


@pytest.mark.usefixtures("disvc_crd")
def test_negative_replicas_on_a_disvc_is_422(kube: KubeEnv) -> None:
    status = _rejected_disvc(kube, disvc("d", replicas=-1))
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(f'DistributedInferenceService.{KSERVE} "d" is invalid: ')
    assert "spec.replicas" in status["message"]
    assert "spec.replicas" in _cause_fields(status)


@pytest.mark.usefixtures("disvc_crd")
def test_disvc_replicas_default_to_1(kube: KubeEnv) -> None:
    body = disvc("d")
    del body["spec"]["replicas"]
    created = kube.custom.create_namespaced_custom_object(KSERVE, DISVC_VERSION, kube.namespace, DISVCS, body)
    assert created["spec"]["replicas"] == 1


@pytest.mark.usefixtures("disvc_crd")
def test_cel_rule_violation_is_422_with_the_rule_message(kube: KubeEnv) -> None:
    body = disvc("d")
    body["spec"]["inferenservice"] = body["spec"]["inferenceService"]
    status = _rejected_disvc(kube, body)
    assert "set exactly one of spec.inferenceService and its alias spec.inferenservice" in status["message"]
    assert "spec" in _cause_fields(status)


@pytest.mark.usefixtures("disvc_crd")
def test_seed_spelling_inferenservice_is_accepted(kube: KubeEnv) -> None:
    body = disvc("d")
    body["spec"]["inferenservice"] = body["spec"].pop("inferenceService")
    created = kube.custom.create_namespaced_custom_object(KSERVE, DISVC_VERSION, kube.namespace, DISVCS, body)
    assert "predictor" in created["spec"]["inferenservice"]


# --- built-in types -----------------------------------------------------------


def test_invalid_object_name_is_422(kube: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        kube.core.create_namespaced_config_map(kube.namespace, config_map("Not_A_DNS_Name"))
    assert caught.value.status == 422
    status = status_of(caught.value)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('ConfigMap "Not_A_DNS_Name" is invalid: metadata.name: Invalid value')


def test_service_port_out_of_range_is_422(kube: KubeEnv) -> None:
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="s"),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=70000)]),
    )
    with pytest.raises(ApiException) as caught:
        kube.core.create_namespaced_service(kube.namespace, service)
    assert caught.value.status == 422
    assert "spec.ports[0].port" in status_of(caught.value)["message"]
