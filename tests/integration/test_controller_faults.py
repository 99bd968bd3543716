"""The controller against a misbehaving API server (loopback substrate only):
failed writes, throttling, dropped watches and expired resourceVersions all
end in the same converged state a user would see without them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from disvc.testing.apiserver import FaultRule
from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub

from .harness import POC1, Cluster, RunningController, condition

pytestmark = pytest.mark.substrate_only

NAME = "sklearn-v2-iris-rest"
Obj = dict[str, Any]


def apply_poc1(kube: KubeEnv, replicas: int = 1) -> None:
    doc: Obj = yaml.safe_load(POC1.read_text())
    doc["spec"]["replicas"] = replicas
    kube.apply_yaml(yaml.safe_dump(doc))


def converged(cluster: Cluster, replicas: int) -> None:
    disvc = cluster.disvc(NAME)
    assert (condition(disvc, "Ready") or {}).get("status") == "True", disvc.get("status")
    assert (disvc.get("status") or {}).get("readyReplicas") == replicas
    assert set(cluster.isvcs()) == {f"{NAME}-v1-{i}" for i in range(replicas)}
    assert {NAME, f"{NAME}-v1"} <= set(cluster.services())
    assert NAME in cluster.ingresses()


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(FaultRule(verb="patch", resource="services", count=6, code=500), id="500s"),
        pytest.param(FaultRule(verb="create", resource="inferenceservices", count=6, code=429, retry_after=1),
                     id="429s-with-retry-after"),
        pytest.param(FaultRule(verb="patch", resource="distributedinferenceservices/status", count=6, code=503),
                     id="503s-on-status"),
    ],
)
def test_failed_writes_are_retried_until_converged(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub, fault: FaultRule
) -> None:
    assert kube.server is not None
    rule = kube.server.add_fault(fault)

    apply_poc1(kube)

    eventually(lambda: converged(cluster, 1), timeout=30)
    assert rule.hits == fault.count  # every spoiled request was really sent, and retried past


def test_a_dropped_watch_is_resumed(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    assert kube.server is not None
    apply_poc1(kube)
    eventually(lambda: converged(cluster, 1))

    assert kube.server.drop_watches() >= 4  # the controller's four informers, at least
    apply_poc1(kube, replicas=2)  # an event only a resumed DISVC watch can deliver

    eventually(lambda: converged(cluster, 2), timeout=30)


def test_an_expired_resource_version_makes_it_relist_and_converge(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    assert kube.server is not None
    apply_poc1(kube)
    eventually(lambda: converged(cluster, 1))
    lists_before = kube.server.request_count(verb="list", resource="distributedinferenceservices")
    kube.server.add_fault(FaultRule(verb="watch", resource="distributedinferenceservices", count=1, code=410))

    kube.server.drop_watches()  # the re-watch meets the 410

    eventually(lambda: _more(kube.server.request_count(  # type: ignore[union-attr]
        verb="list", resource="distributedinferenceservices"), lists_before), timeout=30)
    apply_poc1(kube, replicas=2)
    eventually(lambda: converged(cluster, 2), timeout=30)


def test_a_child_deleted_while_the_watch_was_down_is_recreated(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    assert kube.server is not None
    apply_poc1(kube)
    eventually(lambda: converged(cluster, 1))
    old_uid = cluster.services()[f"{NAME}-v1"]["metadata"]["uid"]
    # The Service watch comes back only through the relist a 410 forces; the
    # delete lands around that relist, and either side of it must end with
    # the Service back (a tombstone from the relist, or a watch event after).
    kube.server.add_fault(FaultRule(verb="watch", resource="services", count=1, code=410))
    kube.server.drop_watches()
    cluster.core.delete_namespaced_service(f"{NAME}-v1", kube.namespace)

    def recreated() -> None:
        service = cluster.services().get(f"{NAME}-v1")
        assert service is not None and service["metadata"]["uid"] != old_uid

    eventually(recreated, timeout=30)


def _more(value: int, than: int) -> None:
    assert value > than, f"{value} <= {than}"
