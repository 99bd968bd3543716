"""Built-in defaults the controller's children rely on, and Leases.

A Service gets a clusterIP from the service range and defaulted fields
(type ClusterIP, protocol TCP, targetPort = port, sessionAffinity None);
the clusterIP cannot change. Leases are the leader-election lock: create,
renew with optimistic concurrency, and a 409 for whoever renews stale.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import KubeEnv


def _service(name: str = "s", **spec: object) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(selector={"app": name}, ports=[client.V1ServicePort(port=80)], **spec),
    )


def test_service_gets_a_cluster_ip(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_service(kube.namespace, _service())
    address = ipaddress.ip_address(created.spec.cluster_ip)
    assert not address.is_unspecified
    assert created.spec.cluster_ips == [created.spec.cluster_ip]


def test_services_get_distinct_cluster_ips(kube: KubeEnv) -> None:
    first = kube.core.create_namespaced_service(kube.namespace, _service("a"))
    second = kube.core.create_namespaced_service(kube.namespace, _service("b"))
    assert first.spec.cluster_ip != second.spec.cluster_ip


def test_service_defaults(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_service(kube.namespace, _service())
    assert created.spec.type == "ClusterIP"
    assert created.spec.session_affinity == "None"
    port = created.spec.ports[0]
    assert port.protocol == "TCP"
    assert port.target_port == 80


def test_headless_service_keeps_cluster_ip_none(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_service(kube.namespace, _service(cluster_ip="None"))
    assert created.spec.cluster_ip == "None"


def test_cluster_ip_cannot_change(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_service(kube.namespace, _service())
    other = "10.0.0.250" if created.spec.cluster_ip != "10.0.0.250" else "10.0.0.251"
    with pytest.raises(ApiException) as caught:
        kube.core.patch_namespaced_service(
            "s", kube.namespace, {"spec": {"clusterIP": other, "clusterIPs": [other]}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
    assert caught.value.status == 422
    assert "may not change once set" in caught.value.body


def test_cluster_ip_survives_an_update_that_omits_it(kube: KubeEnv) -> None:
    created = kube.core.create_namespaced_service(kube.namespace, _service())
    patched = kube.core.patch_namespaced_service(
        "s", kube.namespace, {"spec": {"sessionAffinity": "ClientIP"}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert patched.spec.cluster_ip == created.spec.cluster_ip
    assert patched.spec.session_affinity == "ClientIP"


# --- Leases --------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _lease(holder: str) -> client.V1Lease:
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name="disvc-leader"),
        spec=client.V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=15,
            acquire_time=_now(),
            renew_time=_now(),
            lease_transitions=0,
        ),
    )


def test_lease_create_and_read_back(kube: KubeEnv) -> None:
    coordination = client.CoordinationV1Api(kube.api_client)
    coordination.create_namespaced_lease(kube.namespace, _lease("pod-a"))
    read = coordination.read_namespaced_lease("disvc-leader", kube.namespace)
    assert read.spec.holder_identity == "pod-a"
    assert read.spec.lease_duration_seconds == 15
    assert read.spec.renew_time is not None


def test_lease_renewal_changes_the_resource_version(kube: KubeEnv) -> None:
    coordination = client.CoordinationV1Api(kube.api_client)
    created = coordination.create_namespaced_lease(kube.namespace, _lease("pod-a"))
    created.spec.renew_time = _now()
    created.spec.holder_identity = "pod-b"
    created.spec.lease_transitions = 1
    renewed = coordination.replace_namespaced_lease("disvc-leader", kube.namespace, created)
    assert renewed.metadata.resource_version != created.metadata.resource_version
    assert renewed.spec.holder_identity == "pod-b"
    assert renewed.spec.lease_transitions == 1


def test_only_one_of_two_racing_renewals_wins(kube: KubeEnv) -> None:
    coordination = client.CoordinationV1Api(kube.api_client)
    seen_by_a = coordination.create_namespaced_lease(kube.namespace, _lease("pod-a"))
    seen_by_b = coordination.read_namespaced_lease("disvc-leader", kube.namespace)
    seen_by_a.spec.renew_time = _now()
    coordination.replace_namespaced_lease("disvc-leader", kube.namespace, seen_by_a)
    seen_by_b.spec.holder_identity = "pod-b"
    with pytest.raises(ApiException) as caught:
        coordination.replace_namespaced_lease("disvc-leader", kube.namespace, seen_by_b)
    assert caught.value.status == 409
    stored = coordination.read_namespaced_lease("disvc-leader", kube.namespace)
    assert stored.spec.holder_identity == "pod-a"
