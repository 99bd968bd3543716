"""The ``kube`` fixture: a fresh namespace per test, CRDs in place, and
``apply_yaml`` for manifests such as the seed DISVC."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from disvc.testing.fixtures import CRD_PATH, KubeEnv, eventually, request_json

SEED = Path(__file__).resolve().parents[2] / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice.yaml"


def test_the_test_namespace_exists_and_is_empty(kube: KubeEnv) -> None:
    kube.core.read_namespace(kube.namespace)
    services = kube.core.list_namespaced_service(kube.namespace)
    assert services.items == []


def test_both_crds_are_established(kube: KubeEnv) -> None:
    for name in ("inferenceservices.serving.kserve.io", "distributedinferenceservices.serving.kserve.io"):
        crd = request_json(kube.api_client, "GET", f"{CRD_PATH}/{name}")
        established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
        assert established and established[0]["status"] == "True"


def test_apply_yaml_puts_objects_in_the_test_namespace(kube: KubeEnv) -> None:
    [applied] = kube.apply_yaml(
        """
apiVersion: v1
kind: ConfigMap
metadata:
  name: from-yaml
  namespace: somewhere-else
data:
  k: v
"""
    )
    assert applied["metadata"]["namespace"] == kube.namespace
    stored = kube.core.read_namespaced_config_map("from-yaml", kube.namespace)
    assert stored.data == {"k": "v"}
    assert [e.manager for e in stored.metadata.managed_fields] == ["test"]


def test_apply_yaml_applies_every_document_and_is_idempotent(kube: KubeEnv) -> None:
    text = """
apiVersion: v1
kind: ConfigMap
metadata: {name: one}
---
apiVersion: v1
kind: Service
metadata: {name: two}
spec:
  ports: [{port: 80}]
"""
    first = kube.apply_yaml(text)
    second = kube.apply_yaml(text)
    assert [o["kind"] for o in first] == ["ConfigMap", "Service"]
    assert [o["metadata"]["resourceVersion"] for o in second] == [o["metadata"]["resourceVersion"] for o in first]


def test_apply_yaml_accepts_the_seed_manifest_unchanged(kube: KubeEnv) -> None:
    [applied] = kube.apply_yaml(SEED)
    assert applied["kind"] == "DistributedInferenceService"
    assert applied["metadata"]["namespace"] == kube.namespace
    assert "inferenservice" in applied["spec"]


def test_kubeconfig_reaches_the_same_api(kube: KubeEnv) -> None:
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=kube.kubeconfig)
    try:
        client.CoreV1Api(api_client).read_namespace(kube.namespace)
    finally:
        api_client.close()


def test_a_deleted_namespace_goes_with_all_it_holds(kube: KubeEnv) -> None:
    # what the fixture does after each test, on a namespace of this test's own
    name = f"{kube.namespace}-gone"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    kube.apply_yaml(
        """
apiVersion: v1
kind: Service
metadata: {name: holds-a-cluster-ip}
spec:
  ports: [{port: 80}]
""",
        namespace=name,
    )
    kube.apply_yaml(SEED, namespace=name)

    assert kube.session.delete_namespace(name) == []

    def gone() -> None:
        try:
            kube.core.read_namespace(name)
        except client.ApiException as error:
            assert error.status == 404
        else:
            raise AssertionError(f"namespace {name} still there")

    eventually(gone, timeout=60)  # a real cluster's namespace controller takes its time
