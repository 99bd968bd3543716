"""KServe's Knative mode end to end: the real controller with the Knative-mode stand-in.

The stand-in (``disvc.testing.knative_stub``) creates what KServe and Knative
create for each ISVC (KServe's ExternalName ``N-v<g>-<i>``, the revision
Services) and reports what they report (``status.deploymentMode``, the
predictor's revisions, ready copies). Every check a user could make with
kubectl: the Services reach the pods through queue-proxy's ``queue-port``,
never 8080, and select only the predictor pods of the revision each ISVC
serves; KServe's own Services are left as KServe wrote them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.knative_stub import CONFIGURATION_GENERATION_LABEL, KnativeKServeStub

from .harness import POC1, Cluster, RunningController, StartController, condition

NAME = "sklearn-v2-iris-rest"
TIMEOUT = 30.0
Obj = dict[str, Any]


@pytest.fixture
def knative(kube: KubeEnv) -> Iterator[KnativeKServeStub]:
    """KServe with Knative Serving: every ISVC Ready on its latest revision."""
    stub = KnativeKServeStub(kube.api_client, namespace=kube.namespace, ready_after=0.3).start()
    yield stub
    stub.stop()


def sample(mode: str, replicas: int = 2, **spec: Any) -> Obj:
    """PoC 1's sample in ``mode``."""
    doc: Obj = yaml.safe_load(POC1.read_text())
    doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = mode
    doc["metadata"].pop("namespace", None)
    doc["spec"]["replicas"] = replicas
    doc["spec"].update(spec)
    return doc


def apply(kube: KubeEnv, doc: Obj) -> None:
    kube.apply_yaml(yaml.safe_dump(doc))


def our_services(cluster: Cluster) -> dict[str, Obj]:
    """The Services the DISVC controls (Knative's carry its labels too)."""
    return {
        name: svc
        for name, svc in cluster.services().items()
        if any(ref.get("kind") == "DistributedInferenceService" for ref in svc["metadata"].get("ownerReferences", []))
    }


def assert_through_queue_proxy(cluster: Cluster, revision: str = "1") -> None:
    services = our_services(cluster)
    assert services, "no Service yet"
    for name, svc in services.items():
        [port] = svc["spec"]["ports"]
        assert port["targetPort"] == "queue-port", (name, port)
        selector = svc["spec"]["selector"]
        assert selector["component"] == "predictor", (name, selector)
        assert selector[CONFIGURATION_GENERATION_LABEL] == revision, (name, selector)


def ready_status(cluster: Cluster, replicas: int, generation: str = "v1") -> Obj:
    disvc = cluster.disvc(NAME)
    status = disvc.get("status") or {}
    assert (condition(disvc, "Ready") or {}).get("status") == "True", status
    assert status.get("readyReplicas") == replicas and status.get("activeGeneration") == generation, status
    assert set(cluster.isvcs()) == {f"{NAME}-{generation}-{i}" for i in range(replicas)}
    return status


@pytest.mark.parametrize("mode", ["Serverless", "Knative"])
def test_the_poc_sample_converges_in_knative_mode_through_queue_proxy(
    kube: KubeEnv, controller: RunningController, knative: KnativeKServeStub, cluster: Cluster, mode: str
) -> None:
    apply(kube, sample(mode))
    status = eventually(lambda: ready_status(cluster, 2), TIMEOUT)
    assert status["address"]["url"] == f"http://{NAME}-v1.{kube.namespace}.svc.cluster.local"
    assert_through_queue_proxy(cluster)
    services = cluster.services()
    for index in range(2):
        isvc = f"{NAME}-v1-{index}"
        assert cluster.isvc(isvc)["status"]["deploymentMode"] == "Knative"
        # KServe's ExternalName alias and Knative's revision Services, as they wrote them
        alias = services[isvc]
        assert alias["spec"]["type"] == "ExternalName"
        assert [ref["kind"] for ref in alias["metadata"]["ownerReferences"]] == ["InferenceService"]
        assert f"{isvc}-predictor-00001-private" in services
    # a converged DISVC is not written again, Knative's labelled Services notwithstanding
    before = cluster.disvc(NAME)["metadata"]["resourceVersion"]
    versions = {n: s["metadata"]["resourceVersion"] for n, s in our_services(cluster).items()}
    eventually(lambda: ready_status(cluster, 2), TIMEOUT)
    assert cluster.disvc(NAME)["metadata"]["resourceVersion"] == before
    assert {n: s["metadata"]["resourceVersion"] for n, s in our_services(cluster).items()} == versions


def test_a_new_revision_moves_the_services_off_the_old_one(
    kube: KubeEnv, controller: RunningController, knative: KnativeKServeStub, cluster: Cluster
) -> None:
    apply(kube, sample("Knative"))
    eventually(lambda: ready_status(cluster, 2), TIMEOUT)
    # KServe re-renders the ISVCs (a new default, an upgrade): each gets revision 2
    for index in range(2):
        cluster.raw(
            "PATCH",
            cluster.isvcs_path(f"{NAME}-v1-{index}"),
            body={"spec": {"predictor": {"timeout": 120}}},
            content_type="application/merge-patch+json",
        )
    eventually(lambda: assert_through_queue_proxy(cluster, revision="2"), TIMEOUT)
    eventually(lambda: ready_status(cluster, 2), TIMEOUT)


def test_scale_to_zero_in_knative_mode_is_reported_naming_the_field(
    kube: KubeEnv, controller: RunningController, knative: KnativeKServeStub, cluster: Cluster
) -> None:
    doc = sample("Serverless")
    doc["spec"]["inferenservice"]["predictor"]["minReplicas"] = 0
    apply(kube, doc)

    def refused() -> None:
        ready = condition(cluster.disvc(NAME), "Ready") or {}
        assert (ready.get("status"), ready.get("reason")) == ("False", "InvalidSpec"), ready
        assert "spec.inferenservice.predictor.minReplicas" in ready["message"], ready
        assert "scale to zero" in ready["message"]

    eventually(refused, TIMEOUT)
    assert cluster.isvcs() == {}


def test_knative_mode_without_knative_serving_is_reported(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    stub = KnativeKServeStub(kube.api_client, namespace=kube.namespace, knative_installed=False).start()
    try:
        apply(kube, sample("Serverless", replicas=1))

        def rejected() -> None:
            ready = condition(cluster.disvc(NAME), "Ready") or {}
            assert (ready.get("status"), ready.get("reason")) == ("False", "ServerlessModeRejected"), ready

        eventually(rejected, TIMEOUT)
    finally:
        stub.stop()


def test_the_default_mode_flag_is_stamped_on_the_isvcs(
    kube: KubeEnv, start_controller: StartController, knative: KnativeKServeStub, cluster: Cluster
) -> None:
    start_controller(default_deployment_mode="Knative")
    doc = sample("Knative")
    del doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    apply(kube, doc)
    eventually(lambda: ready_status(cluster, 2), TIMEOUT)
    isvc = cluster.isvc(f"{NAME}-v1-0")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert_through_queue_proxy(cluster)


ROLLOUTS = pytest.mark.parametrize(
    "rollout",
    [None, {"strategy": "Rolling", "maxSurge": 1, "maxUnavailable": 0}, {"canaryTrafficPercent": 50}],
    ids=["blue-green", "rolling", "canary"],
)


def _rollout_to_v2(
    kube: KubeEnv, cluster: Cluster, rollout: Obj | None, restart: StartController | None = None,
    first: RunningController | None = None,
) -> None:
    extra = {"rollout": {"scaleDownDelaySeconds": 0, **(rollout or {})}}
    apply(kube, sample("Serverless", **extra))
    eventually(lambda: ready_status(cluster, 2), TIMEOUT)
    changed = sample("Serverless", **copy.deepcopy(extra))
    changed["spec"]["annotations"] = {"version": "v2"}
    apply(kube, changed)
    seen: list[str] = []

    def new_generation_up() -> None:
        assert_through_queue_proxy(cluster)  # at every step: never 8080
        assert f"{NAME}-v2-0" in cluster.isvcs()
        seen.append("v2")

    eventually(new_generation_up, TIMEOUT)
    if restart is not None and first is not None:
        first.stop()
        restart()
    if rollout is not None and "canaryTrafficPercent" in rollout:
        def split() -> None:
            assert_through_queue_proxy(cluster)
            assert (condition(cluster.disvc(NAME), "Progressing") or {}).get("reason") == "CanaryRunning"

        eventually(split, TIMEOUT)
        cluster.merge_patch_disvc(NAME, {"spec": {"rollout": {"canaryTrafficPercent": None}}})

    def finished() -> None:
        assert_through_queue_proxy(cluster)
        ready_status(cluster, 2, "v2")
        assert set(our_services(cluster)) == {NAME, f"{NAME}-v2"}

    eventually(finished, TIMEOUT)


@ROLLOUTS
def test_rollouts_in_knative_mode_stay_on_queue_proxy(
    kube: KubeEnv, controller: RunningController, knative: KnativeKServeStub, cluster: Cluster,
    rollout: Obj | None,
) -> None:
    _rollout_to_v2(kube, cluster, rollout)


@ROLLOUTS
def test_a_restart_mid_rollout_in_knative_mode_resumes(
    kube: KubeEnv, start_controller: StartController, knative: KnativeKServeStub, cluster: Cluster,
    rollout: Obj | None,
) -> None:
    knative.ready_after = 1.0  # slow enough that the restart lands mid-rollout
    first = start_controller()
    _rollout_to_v2(kube, cluster, rollout, restart=start_controller, first=first)


# --- requests through queue-proxy (the data plane) ---------------------------------


KNATIVE_SAMPLE = POC1.parent / "serving_v1alpha1_distributedinferenceservice_knative.yaml"
READY_TIMEOUT = 120.0
"""Model servers take seconds each to start on a busy 2-core machine."""


def _revision_counts(counts: dict[str, int], number: int) -> dict[str, int]:
    return {revision: n for revision, n in counts.items() if revision.endswith(f"-predictor-{number:05d}")}


def test_the_knative_sample_is_answered_through_queue_proxy_and_a_new_revision_takes_the_load(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytest.importorskip("kserve", reason="needs the dataplane extra: pip install -e '.[dataplane]'")
    from disvc.testing.dataplane.plane import DataPlane
    from disvc.testing.dataplane.traffic import SEED_ANSWER, Client, client_addresses, prediction

    plane = DataPlane(kube.api_client, namespace=kube.namespace, log_dir=tmp_path_factory.mktemp("pods"), knative=True)
    with plane:
        doc: Obj = yaml.safe_load(KNATIVE_SAMPLE.read_text())
        doc["metadata"].pop("namespace", None)
        name = doc["metadata"]["name"]
        apply(kube, doc)
        isvcs = [f"{name}-v1-{i}" for i in range(2)]

        def ready(revision: int) -> None:
            disvc = cluster.disvc(name)
            assert (condition(disvc, "Ready") or {}).get("status") == "True", disvc.get("status")
            for svc in our_services(cluster).values():
                assert svc["spec"]["ports"][0]["targetPort"] == "queue-port", svc["spec"]
                assert svc["spec"]["selector"][CONFIGURATION_GENERATION_LABEL] == str(revision), svc["spec"]

        eventually(lambda: ready(1), READY_TIMEOUT, interval=0.2)
        pods = [p for p in plane.registry.all() if p.namespace == kube.namespace]
        assert {p.revision for p in pods} == {f"{isvc}-predictor-00001" for isvc in isvcs}
        for pod in pods:  # a revision's pod: Knative's labels, queue-proxy's named port
            assert pod.labels["serving.knative.dev/revision"] == pod.revision
            assert pod.labels[CONFIGURATION_GENERATION_LABEL] == "1"
            assert pod.port("queue-port") == 8012

        def send(count: int) -> None:
            # through Service N: the router resolves targetPort queue-port on each pod
            host = f"{name}.{kube.namespace}.svc.cluster.local"
            for source in client_addresses(count, first=40):
                answer = Client(source).infer(plane.address, host, name)
                assert answer.ok, answer
                assert prediction(answer.body) == SEED_ANSWER

        send(20)
        first = plane.launcher.queue_proxies.counts()
        # every request passed a queue-proxy, which counted it against revision 1
        assert sum(_revision_counts(first, 1).values()) == 20, first
        assert set(_revision_counts(first, 1)) <= {f"{isvc}-predictor-00001" for isvc in isvcs}

        # KServe re-renders the ISVCs: Knative makes revision 2 beside revision 1
        for isvc in isvcs:
            cluster.raw(
                "PATCH",
                cluster.isvcs_path(isvc),
                body={"spec": {"predictor": {"timeout": 120}}},
                content_type="application/merge-patch+json",
            )
        eventually(lambda: ready(2), READY_TIMEOUT, interval=0.2)
        before = plane.launcher.queue_proxies.counts()
        send(20)
        after = plane.launcher.queue_proxies.counts()
        gained = {revision: n - before.get(revision, 0) for revision, n in after.items()}
        # the new revision's pods take every request; the old revision's get none
        assert sum(_revision_counts(gained, 2).values()) == 20, gained
        assert sum(_revision_counts(gained, 1).values()) == 0, gained
        assert set(_revision_counts(gained, 2)) <= {f"{isvc}-predictor-00002" for isvc in isvcs}
