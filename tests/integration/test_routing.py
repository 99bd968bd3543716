"""Each client stays with its replica, router by router, through the data plane.

ingress-nginx (the router's ``nginx`` module, following ingress-nginx's
documented balancer) and a Gateway API Gateway (the router's ``gateway``
module, which also writes route status as a Gateway implementation does,
``disvc.testing.dataplane.gateway_status``) in front of real KServe model
servers, with the real controller started with no Gateway flag and the real
Gateway API v1.6.1 CRDs. Every test checks what a client notices (which
replica answered it) and what the DISVC's status says.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from disvc.testing.crds import install_gateway_api
from disvc.testing.dataplane.traffic import Client, client_addresses, failures, pods_by_client
from disvc.testing.fixtures import KubeEnv, eventually

from .harness import POC1, Cluster, RunningController, condition
from .test_traffic import (
    NAME,
    READY_TIMEOUT,
    _requests,
    apply,
    assert_no_failures,
    external_host,
    generation_of,
    manifest,
    wait_settled,
)

pytest.importorskip("kserve", reason="needs the dataplane extra: pip install -e '.[dataplane]'")

from disvc.testing.dataplane.gateway_status import CONTROLLER_NAME
from disvc.testing.dataplane.plane import DataPlane

Obj = dict[str, Any]
GATEWAY_CLASS = "disvc-dataplane"


@pytest.fixture
def dataplane(kube: KubeEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataPlane]:
    plane = DataPlane(kube.api_client, namespace=kube.namespace, log_dir=tmp_path_factory.mktemp("pods"))
    with plane:
        yield plane


@pytest.fixture
def gateway(kube: KubeEnv) -> str:
    """The real Gateway API CRDs (experimental channel: sessionPersistence),
    a GatewayClass the data plane's router claims, and Gateway ``public`` in
    the test's namespace with one listener ``http`` for its own namespace."""
    install_gateway_api(kube.api_client, "experimental")
    kube.apply_yaml(yaml.safe_dump({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": GATEWAY_CLASS}, "spec": {"controllerName": CONTROLLER_NAME},
    }))  # fmt: skip
    kube.apply_yaml(yaml.safe_dump({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "public", "namespace": kube.namespace},
        "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [
            {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "Same"}}},
        ]},
    }))  # fmt: skip
    return "public"


def _paths(disvc: Obj) -> dict[str, tuple[bool, str]]:
    paths = (disvc.get("status") or {}).get("sessionAffinity", {}).get("paths", [])
    return {p["path"]: (p["enforced"], p["mode"]) for p in paths}


def _route(cluster: Cluster, kind: str = "httproutes") -> Obj | None:
    return cluster.find(f"/apis/gateway.networking.k8s.io/v1/namespaces/{cluster.ns}/{kind}/{NAME}")


def _assert(condition_holds: Any) -> None:
    assert condition_holds


# --- ingress-nginx ----------------------------------------------------------------------


def test_by_default_ingress_nginx_hashes_each_client_to_one_replica(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    apply(kube, manifest(replicas=3))
    disvc = wait_settled(cluster, 3, "v1")
    answers = _requests(dataplane, external_host(kube), client_addresses(9), per_client=6)
    assert not failures(answers)
    per_client = pods_by_client(answers)
    assert all(len(pods) == 1 for pods in per_client.values()), per_client
    assert len({pods[0] for pods in per_client.values()}) > 1, "one replica took every client"
    assert _paths(disvc) == {"Service": (True, "ClientIP"), "Ingress": (True, "ClientIP")}


def test_with_session_affinity_none_ingress_nginx_spreads_a_clients_requests(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    """What the status says when affinity is off is what a client sees."""
    doc = manifest(replicas=3)
    doc["spec"]["sessionAffinity"] = {"type": "None"}
    apply(kube, doc)
    disvc = wait_settled(cluster, 3, "v1")
    answers = _requests(dataplane, external_host(kube), ["127.0.0.4"], per_client=12)
    assert not failures(answers)
    assert len({a.pod for a in answers}) > 1
    assert _paths(disvc) == {"Service": (False, "None"), "Ingress": (False, "None")}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("affinity", "sticky"), [({"type": "Cookie"}, True), ({}, False)], ids=["cookie-sticky", "client-ip"]
)
def test_during_a_canary_only_cookie_affinity_keeps_each_client_on_one_generation(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster,
    affinity: Obj, sticky: bool,
) -> None:
    rollout = {"canaryTrafficPercent": 50}
    doc = manifest(replicas=2, rollout=rollout)
    doc["spec"]["sessionAffinity"] = affinity
    apply(kube, doc)
    wait_settled(cluster, 2, "v1")
    doc = manifest(replicas=2, version="v2", rollout=rollout)
    doc["spec"]["sessionAffinity"] = affinity
    apply(kube, doc)
    eventually(lambda: _assert(NAME + "-canary" in cluster.ingresses()), timeout=READY_TIMEOUT, interval=0.2)
    disvc = eventually(lambda: _canary_reported(cluster), timeout=30, interval=0.2)
    time.sleep(0.5)  # the router follows the canary Ingress
    clients = [Client(source) for source in client_addresses(8, first=40)]
    answers = [client.infer(dataplane.address, external_host(kube), NAME) for _ in range(8) for client in clients]
    assert_no_failures(answers, at_least=64)
    generations = collections.defaultdict(set)
    for answer in answers:
        generations[answer.source].add(generation_of(answer))
    if sticky:
        assert all(len(seen) == 1 for seen in generations.values()), dict(generations)
        assert {g for seen in generations.values() for g in seen} == {"v1", "v2"}, "the weight picked one side for all"
        assert all(len(pods) == 1 for pods in pods_by_client(answers).values())
    else:
        assert any(len(seen) == 2 for seen in generations.values()), dict(generations)
    assert _paths(disvc)["Canary"] == (sticky, "Cookie" if sticky else "None")


def _canary_reported(cluster: Cluster) -> Obj:
    disvc = cluster.disvc(NAME)
    assert "Canary" in _paths(disvc), disvc.get("status")
    return disvc


# --- Gateway API ------------------------------------------------------------------------


def test_a_controller_without_a_gateway_flag_routes_through_a_gateway_and_keeps_each_client(
    kube: KubeEnv, gateway: str, dataplane: DataPlane, start_controller: Any, cluster: Cluster
) -> None:
    start_controller()  # no Gateway flag: the CRDs are found on the cluster
    apply(kube, manifest(replicas=3, ingress={"gateway": {"name": gateway}}))
    wait_settled(cluster, 3, "v1")
    disvc = eventually(lambda: _with_url(cluster), timeout=30, interval=0.2)  # once the Gateway accepts
    [rule] = (_route(cluster) or {})["spec"]["rules"]
    assert rule["sessionPersistence"]["type"] == "Cookie"
    assert cluster.ingresses() == {}
    clients = [Client(source) for source in client_addresses(6, first=60)]
    answers = [client.infer(dataplane.address, external_host(kube), NAME) for _ in range(6) for client in clients]
    assert not failures(answers)
    per_client = pods_by_client(answers)
    assert all(len(pods) == 1 for pods in per_client.values()), per_client
    assert _paths(disvc)["HTTPRoute"] == (True, "Cookie")


def test_a_route_the_gateway_refuses_makes_the_disvc_not_ready_until_it_is_fixed(
    kube: KubeEnv, gateway: str, dataplane: DataPlane, start_controller: Any, cluster: Cluster
) -> None:
    start_controller()
    apply(kube, manifest(replicas=1, ingress={"gateway": {"name": gateway, "sectionName": "https"}}))

    def refused() -> Obj:
        disvc = cluster.disvc(NAME)
        ready = condition(disvc, "Ready") or {}
        assert (ready.get("status"), ready.get("reason")) == ("False", "RouteNotAccepted"), ready
        return disvc

    disvc = eventually(refused, timeout=READY_TIMEOUT, interval=0.2)
    message = (condition(disvc, "Ready") or {})["message"]
    assert "Accepted=False NoMatchingParent" in message and "https" in message, message
    assert "url" not in disvc["status"]
    apply(kube, manifest(replicas=1, ingress={"gateway": {"name": gateway, "sectionName": "http"}}))
    eventually(lambda: _with_url(cluster), timeout=30, interval=0.2)
    assert (condition(cluster.disvc(NAME), "Ready") or {}).get("status") == "True"


def test_the_grpc_sample_through_a_gateway_gets_a_grpc_route_that_answers(
    kube: KubeEnv, gateway: str, dataplane: DataPlane, start_controller: Any, cluster: Cluster
) -> None:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    start_controller()
    sample = yaml.safe_load((POC1.parent / "serving_v1alpha1_distributedinferenceservice_grpc.yaml").read_text())
    sample["metadata"].pop("namespace", None)
    sample["spec"]["ingress"] = {"gateway": {"name": gateway}}
    name = sample["metadata"]["name"]
    kube.apply_yaml(yaml.safe_dump(sample))
    path = f"/apis/gateway.networking.k8s.io/v1/namespaces/{cluster.ns}/grpcroutes/{name}"
    eventually(lambda: _assert(cluster.find(path)), timeout=READY_TIMEOUT, interval=0.2)
    eventually(lambda: _assert((cluster.disvc(name).get("status") or {}).get("url")), timeout=READY_TIMEOUT, interval=0.2)
    assert cluster.find(f"/apis/gateway.networking.k8s.io/v1/namespaces/{cluster.ns}/httproutes/{name}") is None
    request = pb.ModelInferRequest(
        model_name=name,
        inputs=[pb.ModelInferRequest.InferInputTensor(
            name="input-0", datatype="FP32", shape=[2, 4],
            contents=pb.InferTensorContents(fp32_contents=[6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]),
        )],
    )  # fmt: skip
    target = f"{dataplane.address[0]}:{dataplane.address[1]}"
    host = f"{name}-{kube.namespace}.example.com"
    with grpc.insecure_channel(target, options=[("grpc.default_authority", host)]) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert reply.model_name == name
    assert any(hop.router == "gateway" and hop.host.startswith(host) for hop in dataplane.router.hops())


def _with_url(cluster: Cluster) -> Obj:
    disvc = cluster.disvc(NAME)
    assert (disvc.get("status") or {}).get("url"), disvc.get("status")
    return disvc

