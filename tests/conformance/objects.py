"""Small bodies for the conformance tests, each one a real API server accepts."""

from __future__ import annotations

from typing import Any

from kubernetes import client

KSERVE = "serving.kserve.io"
ISVC_VERSION = "v1beta1"
ISVCS = "inferenceservices"
DISVC_VERSION = "v1alpha1"
DISVCS = "distributedinferenceservices"
STORAGE_URI = "gs://kfserving-examples/models/sklearn/1.0/model"


def isvc(name: str, labels: dict[str, str] | None = None, min_replicas: int = 1) -> dict[str, Any]:
    """A small InferenceService that KServe's CRD schema accepts."""
    return {
        "apiVersion": f"{KSERVE}/{ISVC_VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "predictor": {
                "minReplicas": min_replicas,
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": STORAGE_URI},
            }
        },
    }


def disvc(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": f"{KSERVE}/{DISVC_VERSION}",
        "kind": "DistributedInferenceService",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "inferenceService": {
                "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": STORAGE_URI}}
            },
        },
    }


def config_map(
    name: str, labels: dict[str, str] | None = None, data: dict[str, str] | None = None
) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or {"k": "v"})
