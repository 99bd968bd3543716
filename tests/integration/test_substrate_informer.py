"""The substrate's own informer (``disvc.testing.informer``): what the router
and the stand-ins read the API through. Runs on every backend."""

from __future__ import annotations

from kubernetes import client

from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.informer import Informer


def _service(name: str) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "x"}),
        spec=client.V1ServiceSpec(selector={"app": "x"}, ports=[client.V1ServicePort(port=80)]),
    )


def test_follows_creates_updates_and_deletes(kube: KubeEnv) -> None:
    kube.core.create_namespaced_service(kube.namespace, _service("before"))
    changes: list[int] = []
    informer = Informer(kube.api_client, "/api/v1/services", namespace=kube.namespace)
    informer.add_listener(lambda: changes.append(1))
    informer.start()
    try:
        assert informer.wait_synced(10)
        assert informer.get(kube.namespace, "before") is not None  # from the list
        kube.core.create_namespaced_service(kube.namespace, _service("after"))
        eventually(lambda: _assert(informer.get(kube.namespace, "after") is not None))
        kube.core.patch_namespaced_service("after", kube.namespace, {"metadata": {"labels": {"v": "2"}}})
        eventually(lambda: _assert((informer.get(kube.namespace, "after") or {})["metadata"]["labels"].get("v") == "2"))
        kube.core.delete_namespaced_service("before", kube.namespace)
        eventually(lambda: _assert(informer.get(kube.namespace, "before") is None))
        assert changes, "listeners are called on every change"
    finally:
        informer.stop()


def test_a_kind_not_served_is_empty_not_an_error(kube: KubeEnv) -> None:
    informer = Informer(
        kube.api_client, "/apis/example.disvc.test/v1/widgets", namespace=kube.namespace
    ).start()
    try:
        assert informer.wait_synced(10)
        assert informer.items() == []
    finally:
        informer.stop()


def _assert(condition: bool) -> None:
    assert condition
