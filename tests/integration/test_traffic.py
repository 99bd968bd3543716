"""Requests through the whole chain: clients → router → Ingress or Service →
real KServe model servers, while the real controller changes the DISVC.

Every test here sends the seed's v2 iris request and checks what a client
notices: the answer (``[1, 1]``), which replica gave it, and that no request
failed while a rollout or a scale ran. Runs on every backend: the model
servers and the router are the data plane's (``disvc.testing.dataplane``).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from disvc.testing.dataplane.traffic import (
    SEED_ANSWER,
    Answer,
    Client,
    Load,
    client_addresses,
    failures,
    pods_by_client,
    prediction,
)
from disvc.testing.fixtures import KubeEnv, eventually

from .harness import POC1, Cluster, RunningController, condition

pytest.importorskip("kserve", reason="needs the dataplane extra: pip install -e '.[dataplane]'")

from disvc.testing.dataplane.plane import DataPlane

SEED = yaml.safe_load(POC1.read_text())
NAME = SEED["metadata"]["name"]
READY_TIMEOUT = 120.0
"""Model servers take seconds each to start on a busy 2-core machine."""
Obj = dict[str, Any]


@pytest.fixture
def dataplane(kube: KubeEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataPlane]:
    plane = DataPlane(kube.api_client, namespace=kube.namespace, log_dir=tmp_path_factory.mktemp("pods"))
    with plane:
        yield plane


ROUTER_DELAY = 1.5
"""How late the slow router applies a route change: ingress-nginx reloads take 1–3 s."""


@pytest.fixture
def slow_dataplane(kube: KubeEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataPlane]:
    """A data plane whose router applies object changes ``ROUTER_DELAY`` late."""
    plane = DataPlane(
        kube.api_client, namespace=kube.namespace, log_dir=tmp_path_factory.mktemp("pods"), apply_delay=ROUTER_DELAY
    )
    with plane:
        yield plane


def manifest(replicas: int = 1, version: str = "v1", rollout: Obj | None = None, ingress: Obj | None = None) -> Obj:
    doc: Obj = yaml.safe_load(POC1.read_text())
    doc["metadata"].pop("namespace", None)
    spec = doc["spec"]
    spec["inferenceService"] = spec.pop("inferenservice")
    spec["replicas"] = replicas
    spec["annotations"] = {"version": version}
    spec["rollout"] = {"scaleDownDelaySeconds": 2, **(rollout or {})}  # the router applies changes at once
    if ingress is not None:
        spec["ingress"] = ingress
    return doc


def apply(kube: KubeEnv, doc: Obj) -> None:
    kube.apply_yaml(yaml.safe_dump(doc))


def external_host(kube: KubeEnv) -> str:
    return f"{NAME}-{kube.namespace}.example.com"


def internal_host(kube: KubeEnv, service: str = NAME) -> str:
    return f"{service}.{kube.namespace}.svc.cluster.local"


def wait_settled(cluster: Cluster, replicas: int, generation: str) -> Obj:
    """Until the DISVC serves ``generation`` with every replica Ready and
    nothing else left (no other generation's ISVC)."""

    def settled() -> Obj:
        disvc = cluster.disvc(NAME)
        status = disvc.get("status") or {}
        ready = condition(disvc, "Ready") or {}
        assert ready.get("status") == "True", ready
        assert status.get("activeGeneration") == generation, status
        assert status.get("readyReplicas") == replicas, status
        names = set(cluster.isvcs())
        assert names == {f"{NAME}-{generation}-{i}" for i in range(replicas)}, names
        return disvc

    return eventually(settled, timeout=READY_TIMEOUT, interval=0.2)


def generation_of(answer: Answer) -> str:
    assert answer.isvc is not None
    return answer.isvc.removeprefix(f"{NAME}-").rsplit("-", 1)[0]


def answered_ok(client: Client, dataplane: DataPlane, host: str) -> Answer:
    answer = client.infer(dataplane.address, host, NAME)
    assert answer.ok, answer
    assert prediction(answer.body) == SEED_ANSWER
    return answer


def assert_no_failures(answers: list[Answer], at_least: int = 50) -> None:
    bad = failures(answers)
    assert len(answers) >= at_least, f"only {len(answers)} requests were sent"
    assert not bad, f"{len(bad)} of {len(answers)} requests failed, first: {bad[:3]}"


# --- the seed's request ------------------------------------------------------------


def test_the_seed_request_is_answered_through_both_host_names(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    kube.apply_yaml(POC1)  # the seed's manifest, unchanged
    disvc = wait_settled(cluster, 1, "v1")
    status = disvc["status"]
    assert status["url"] == f"http://{external_host(kube)}"
    client = Client("127.0.0.2")
    for host in (internal_host(kube), external_host(kube)):
        answer = answered_ok(client, dataplane, host)
        assert answer.isvc == f"{NAME}-v1-0", f"{host} was answered by {answer.isvc}"
    # status.address names the generation's Service: it answers too.
    address_host = status["address"]["url"].removeprefix("http://")
    assert answered_ok(client, dataplane, address_host).isvc == f"{NAME}-v1-0"


def test_an_unknown_host_is_404_and_a_service_without_ready_pods_is_503(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    client = Client("127.0.0.3")
    assert client.infer(dataplane.address, "nobody.example.com", NAME).status == 404
    doc = manifest()
    doc["spec"]["inferenceService"]["predictor"]["model"]["env"] = [{"name": "DISVC_IRIS_CRASH", "value": "1"}]
    apply(kube, doc)
    eventually(lambda: _assert(internal_host(kube) and NAME in cluster.services()), timeout=30)
    eventually(lambda: _assert(client.infer(dataplane.address, internal_host(kube), NAME).status == 503), timeout=30)


# --- per-client affinity ---------------------------------------------------------


def test_each_client_stays_on_one_replica_through_the_service(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    apply(kube, manifest(replicas=3))
    wait_settled(cluster, 3, "v1")
    answers = _requests(dataplane, internal_host(kube), client_addresses(9), per_client=6)
    assert not failures(answers)
    per_client = pods_by_client(answers)
    assert all(len(pods) == 1 for pods in per_client.values()), per_client
    assert len({pods[0] for pods in per_client.values()}) > 1, "ClientIP affinity, yet one pod took every client"


def test_ingress_nginx_does_not_apply_the_services_affinity(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    """The reason the controller writes ingress-nginx's own affinity
    annotations: without them (here: sessionAffinity None) ingress-nginx
    balances every request on its own, so one client meets every replica.
    That it ignores a Service's ClientIP is pinned in the router's own tests
    (tests/unit/dataplane/router/test_nginx.py)."""
    doc = manifest(replicas=3)
    doc["spec"]["sessionAffinity"] = {"type": "None"}
    apply(kube, doc)
    wait_settled(cluster, 3, "v1")
    answers = _requests(dataplane, external_host(kube), ["127.0.0.4"], per_client=12)
    assert not failures(answers)
    assert len({a.pod for a in answers}) > 1


def test_ingress_hashing_on_the_client_address_keeps_each_client(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    annotations = {"nginx.ingress.kubernetes.io/upstream-hash-by": "$remote_addr"}
    apply(kube, manifest(replicas=3, ingress={"annotations": annotations}))
    wait_settled(cluster, 3, "v1")
    answers = _requests(dataplane, external_host(kube), client_addresses(9), per_client=6)
    assert not failures(answers)
    per_client = pods_by_client(answers)
    assert all(len(pods) == 1 for pods in per_client.values()), per_client
    assert len({pods[0] for pods in per_client.values()}) > 1


# --- no request fails while the DISVC changes ----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "rollout",
    [
        pytest.param({}, id="bluegreen"),
        pytest.param({"strategy": "Rolling", "maxSurge": 1, "maxUnavailable": 0}, id="rolling-1-0"),
        pytest.param({"strategy": "Rolling", "maxSurge": 0, "maxUnavailable": 1}, id="rolling-0-1"),
    ],
)
def test_a_rollout_fails_no_request(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster, rollout: Obj
) -> None:
    apply(kube, manifest(replicas=2, rollout=rollout))
    wait_settled(cluster, 2, "v1")
    hosts = [external_host(kube), internal_host(kube)]
    loads = [Load(dataplane.address, host, NAME, client_addresses(4, first=20 + 10 * i)).start() for i, host in enumerate(hosts)]
    try:
        apply(kube, manifest(replicas=2, version="v2", rollout=rollout))
        wait_settled(cluster, 2, "v2")
        time.sleep(1)  # requests after the last step, too
    finally:
        answers = [a for load in loads for a in load.stop()]
    assert_no_failures(answers)
    served = collections.Counter(generation_of(a) for a in answers)
    assert served["v1"] and served["v2"], served


@pytest.mark.slow
def test_scaling_up_and_down_fails_no_request(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    # no per-client affinity: ingress-nginx balances every request, so the
    # new replicas are seen taking traffic (hashing 6 clients may skip one)
    def scaled(replicas: int) -> Obj:
        doc = manifest(replicas=replicas)
        doc["spec"]["sessionAffinity"] = {"type": "None"}
        return doc

    apply(kube, scaled(1))
    wait_settled(cluster, 1, "v1")
    with Load(dataplane.address, external_host(kube), NAME, client_addresses(6)) as load:
        apply(kube, scaled(3))
        wait_settled(cluster, 3, "v1")
        eventually(lambda: _assert(len({a.pod for a in load.snapshot()[-60:]}) == 3), timeout=30)
        apply(kube, scaled(1))
        wait_settled(cluster, 1, "v1")
        time.sleep(1)
    assert_no_failures(load.answers)


@pytest.mark.slow
def test_a_canary_takes_its_weight_then_is_promoted_without_a_failure(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    apply(kube, manifest(replicas=1))
    wait_settled(cluster, 1, "v1")
    with Load(dataplane.address, external_host(kube), NAME, client_addresses(8), pause=0.0) as load:
        apply(kube, manifest(replicas=1, version="v2", rollout={"canaryTrafficPercent": 10}))
        eventually(lambda: _assert(NAME + "-canary" in cluster.ingresses()), timeout=READY_TIMEOUT, interval=0.2)
        time.sleep(0.5)  # the router follows the canary Ingress
        start = load.count()
        eventually(lambda: _assert(load.count() - start >= 2000), timeout=300, interval=0.5)
        window = load.snapshot()[start:]
        apply(kube, manifest(replicas=1, version="v2", rollout={"canaryTrafficPercent": 100}))
        wait_settled(cluster, 1, "v2")
        time.sleep(1)
    assert_no_failures(load.answers)
    share = 100 * sum(1 for a in window if generation_of(a) == "v2") / len(window)
    assert abs(share - 10) <= 3, f"the canary took {share:.1f}% of {len(window)} requests, weight 10"


@pytest.mark.slow
def test_a_revert_in_the_middle_of_a_rollout_fails_no_request(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    apply(kube, manifest(replicas=2))
    wait_settled(cluster, 2, "v1")
    with Load(dataplane.address, external_host(kube), NAME, client_addresses(6)) as load:
        apply(kube, manifest(replicas=2, version="v2"))
        eventually(lambda: _assert(any("-v2-" in n for n in cluster.isvcs())), timeout=30)
        apply(kube, manifest(replicas=2, version="v1"))  # revert: v2 goes, v1 stays
        wait_settled(cluster, 2, "v1")
        time.sleep(1)
    assert_no_failures(load.answers)
    assert {generation_of(a) for a in load.answers} == {"v1"}


@pytest.mark.slow
@pytest.mark.parametrize("delay", [4, 0], ids=["scale-down-delay", "no-delay"])
def test_a_promotion_behind_a_slow_router_fails_no_request_while_the_old_generation_waits(
    kube: KubeEnv, slow_dataplane: DataPlane, controller: RunningController, cluster: Cluster, delay: int
) -> None:
    """A router that applies the switch late still sends requests to the old
    generation for a while: ``scaleDownDelaySeconds`` keeps it alive for them.
    With 0 (the old behaviour) the same promotion fails requests: the test
    can tell the difference."""
    rollout = {"scaleDownDelaySeconds": delay}
    apply(kube, manifest(replicas=1, rollout=rollout))
    wait_settled(cluster, 1, "v1")
    time.sleep(ROUTER_DELAY + 0.5)  # the slow router has caught up with the first Ingress
    with Load(slow_dataplane.address, external_host(kube), NAME, client_addresses(6)) as load:
        apply(kube, manifest(replicas=1, version="v2", rollout=rollout))
        wait_settled(cluster, 1, "v2")
        time.sleep(ROUTER_DELAY + 1)
    if delay:
        assert_no_failures(load.answers)
    else:
        assert failures(load.answers), "deleting at the switch should fail requests behind a slow router"


# --- gRPC -------------------------------------------------------------------------------


def test_the_grpc_sample_answers_a_v2_grpc_inference_through_its_route(
    kube: KubeEnv, dataplane: DataPlane, controller: RunningController, cluster: Cluster
) -> None:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    sample = POC1.parent / "serving_v1alpha1_distributedinferenceservice_grpc.yaml"
    kube.apply_yaml(sample)
    name = yaml.safe_load(sample.read_text())["metadata"]["name"]
    eventually(
        lambda: _assert((condition(cluster.disvc(name), "Ready") or {}).get("status") == "True"),
        timeout=READY_TIMEOUT, interval=0.2,
    )  # fmt: skip
    request = pb.ModelInferRequest(
        model_name=name,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="input-0", datatype="FP32", shape=[2, 4],
                contents=pb.InferTensorContents(fp32_contents=[6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]),
            )
        ],
    )  # fmt: skip
    for host in (f"{name}-{kube.namespace}.example.com", f"{name}.{kube.namespace}.svc.cluster.local"):
        target = f"{dataplane.address[0]}:{dataplane.address[1]}"
        with grpc.insecure_channel(target, options=[("grpc.default_authority", host)]) as channel:
            reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
        output = reply.outputs[0]
        values = list(output.contents.int64_contents or output.contents.int_contents)
        if not values and reply.raw_output_contents:
            import numpy

            values = numpy.frombuffer(reply.raw_output_contents[0], dtype=numpy.int64).tolist()
        assert values == SEED_ANSWER, (host, reply)


# --- helpers -------------------------------------------------------------------------------


def _requests(dataplane: DataPlane, host: str, sources: list[str], per_client: int) -> list[Answer]:
    answers = []
    for source in sources:
        client = Client(source)
        answers += [client.infer(dataplane.address, host, NAME) for _ in range(per_client)]
    return answers


def _assert(condition_holds: Any) -> None:
    assert condition_holds
