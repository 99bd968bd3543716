"""The seed PoCs end to end: the real controller against the test API.

Each test acts as the PoC's user (apply a DISVC, scale it, bump its
annotations) and checks what that user would see with kubectl: the children,
where traffic points, and the DISVC's status.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub

from .harness import POC1, Cluster, RunningController, condition

NAME = "sklearn-v2-iris-rest"
Obj = dict[str, Any]


def poc1() -> Obj:
    doc: Obj = yaml.safe_load(POC1.read_text())
    return doc


def apply_disvc(kube: KubeEnv, doc: Obj) -> Obj:
    [applied] = kube.apply_yaml(yaml.safe_dump(doc))
    return applied


def test_poc1_creates_isvc_services_and_ingress_then_reports_the_urls(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    ns = kube.namespace
    kube.apply_yaml(POC1)  # the seed manifest, unchanged but for the namespace

    def children_exist() -> None:
        assert set(cluster.isvcs()) == {f"{NAME}-v1-0"}
        assert {f"{NAME}", f"{NAME}-v1"} <= set(cluster.services())
        assert set(cluster.ingresses()) == {NAME}

    eventually(children_exist)
    isvc = cluster.isvc(f"{NAME}-v1-0")
    assert isvc["metadata"]["labels"]["disvc"] == NAME
    assert isvc["metadata"]["labels"]["disvc.group"] == f"{NAME}-v1"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none"
    [owner] = isvc["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"], owner["blockOwnerDeletion"]) == (
        "DistributedInferenceService", NAME, True, True,
    )
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == "gs://kfserving-examples/models/sklearn/1.0/model"
    assert f"--model_name={NAME}" in model.get("args", [])

    services = cluster.services()
    top, generation = services[NAME]["spec"], services[f"{NAME}-v1"]["spec"]
    assert top["selector"] == {"disvc": NAME}
    assert generation["selector"] == {"disvc.group": f"{NAME}-v1"}
    for spec in (top, generation):
        assert spec["type"] == "ClusterIP"
        assert spec["sessionAffinity"] == "ClientIP"
        [port] = spec["ports"]
        assert (port["port"], port["targetPort"]) == (80, 8080)

    [rule] = cluster.ingresses()[NAME]["spec"]["rules"]
    assert rule["host"] == f"{NAME}-{ns}.example.com"
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": f"{NAME}-v1", "port": {"number": 80}}

    def not_ready_yet() -> None:
        status = cluster.disvc(NAME).get("status") or {}
        assert (condition(cluster.disvc(NAME), "Ready") or {}).get("status") == "False"
        assert "url" not in status

    eventually(not_ready_yet)

    cluster.mark_isvc_ready(f"{NAME}-v1-0")  # as KServe would

    def ready() -> None:
        disvc = cluster.disvc(NAME)
        status = disvc.get("status") or {}
        assert status.get("url") == f"http://{NAME}-{ns}.example.com"
        assert (status.get("address") or {}).get("url") == f"http://{NAME}-v1.{ns}.svc.cluster.local"
        assert status["readyReplicas"] == 1
        assert status["replicas"] == 1
        assert status["selector"] == f"disvc={NAME}"
        assert status["observedGeneration"] == disvc["metadata"]["generation"]
        ready_condition = condition(disvc, "Ready")
        assert ready_condition is not None and ready_condition["status"] == "True"

    eventually(ready)


def test_scaling_up_adds_isvcs_and_leaves_services_and_ingress_alone(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    apply_disvc(kube, poc1())
    eventually(lambda: _assert_ready_replicas(cluster, 1))
    before = {name: (o["metadata"]["uid"], o["metadata"]["resourceVersion"])
              for name, o in {**cluster.services(), **cluster.ingresses()}.items()}

    doc = poc1()
    doc["spec"]["replicas"] = 2
    apply_disvc(kube, doc)

    eventually(lambda: _assert_ready_replicas(cluster, 2))
    assert set(cluster.isvcs()) == {f"{NAME}-v1-0", f"{NAME}-v1-1"}
    after = {name: (o["metadata"]["uid"], o["metadata"]["resourceVersion"])
             for name, o in {**cluster.services(), **cluster.ingresses()}.items()}
    assert after == before


def test_scaling_down_removes_the_highest_index_first(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    doc = poc1()
    doc["spec"]["replicas"] = 3
    apply_disvc(kube, doc)
    eventually(lambda: _assert_ready_replicas(cluster, 3))

    doc["spec"]["replicas"] = 2
    apply_disvc(kube, doc)

    def two_left() -> None:
        assert set(cluster.isvcs()) == {f"{NAME}-v1-0", f"{NAME}-v1-1"}
        _assert_ready_replicas(cluster, 2)

    eventually(two_left)


def test_kubectl_scale_through_the_scale_subresource(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    apply_disvc(kube, poc1())
    eventually(lambda: _assert_ready_replicas(cluster, 1))

    # What `kubectl scale disvc sklearn-v2-iris-rest --replicas=3` sends.
    cluster.merge_patch_disvc(NAME, {"spec": {"replicas": 3}}, subresource="scale")

    def scaled() -> None:
        assert set(cluster.isvcs()) == {f"{NAME}-v1-{i}" for i in range(3)}
        _assert_ready_replicas(cluster, 3)

    eventually(scaled)
    scale = cluster.raw("GET", cluster.disvcs_path(NAME, "scale"))
    assert scale["spec"]["replicas"] == 3
    assert scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == f"disvc={NAME}"


def test_a_grpc_model_gets_h2c_services_and_a_grpc_ingress(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    doc = poc1()
    doc["spec"]["inferenservice"]["predictor"]["model"]["ports"] = [
        {"name": "h2c", "containerPort": 8081, "protocol": "TCP"}
    ]
    apply_disvc(kube, doc)

    def grpc_children() -> None:
        services, ingresses = cluster.services(), cluster.ingresses()
        assert {NAME, f"{NAME}-v1"} <= set(services)
        assert NAME in ingresses
        for name in (NAME, f"{NAME}-v1"):
            [port] = services[name]["spec"]["ports"]
            assert port["name"] == "grpc"
            assert port["appProtocol"] == "kubernetes.io/h2c"
            assert (port["port"], port["targetPort"]) == (80, 8081)
        ingress = ingresses[NAME]
        assert ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/backend-protocol") == "GRPC"

    eventually(grpc_children)


def test_rolling_update_moves_traffic_only_after_the_new_generation_is_ready(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    ns = kube.namespace
    doc = poc1()
    doc["spec"]["replicas"] = 2
    doc["spec"]["annotations"] = {"version": "v1"}
    doc["spec"]["rollout"] = {"scaleDownDelaySeconds": 2}  # v1 outlives the switch by 2 s
    apply_disvc(kube, doc)

    def v1_created() -> None:
        assert set(cluster.isvcs()) == {f"{NAME}-v1-0", f"{NAME}-v1-1"}

    eventually(v1_created)
    for i in range(2):
        cluster.mark_isvc_ready(f"{NAME}-v1-{i}")
    eventually(lambda: _assert_ready_replicas(cluster, 2))

    v2 = copy.deepcopy(doc)
    v2["spec"]["annotations"] = {"version": "v2"}  # the seed's PoC 3 step
    apply_disvc(kube, v2)

    def v2_started() -> None:
        assert {f"{NAME}-v2-0", f"{NAME}-v2-1"} <= set(cluster.isvcs())
        assert f"{NAME}-v2" in cluster.services()
        assert cluster.isvc(f"{NAME}-v2-0")["metadata"]["annotations"]["version"] == "v2"

    eventually(v2_started)
    # Not ready yet: traffic and the address stay on v1, and v1 keeps serving.
    assert _ingress_backend(cluster) == f"{NAME}-v1"
    assert {f"{NAME}-v1-0", f"{NAME}-v1-1", f"{NAME}-v1"} <= set(cluster.isvcs()) | set(cluster.services())
    assert cluster.disvc(NAME)["status"]["address"]["url"] == f"http://{NAME}-v1.{ns}.svc.cluster.local"

    reconciles = _reconciles(controller)
    cluster.mark_isvc_ready(f"{NAME}-v2-0")

    def reconciled_since() -> None:
        assert _reconciles(controller) > reconciles

    eventually(reconciled_since)
    assert _ingress_backend(cluster) == f"{NAME}-v1"  # one of two v2 replicas is not enough

    cluster.mark_isvc_ready(f"{NAME}-v2-1")

    def switched() -> None:
        assert _ingress_backend(cluster) == f"{NAME}-v2"
        status = cluster.disvc(NAME).get("status") or {}
        assert (status.get("address") or {}).get("url") == f"http://{NAME}-v2.{ns}.svc.cluster.local"
        assert status.get("activeGeneration") == "v2"
        assert (condition(cluster.disvc(NAME), "Ready") or {}).get("status") == "True"

    eventually(switched)

    def v1_gone() -> None:  # only after the switch, once scaleDownDelaySeconds has passed
        assert set(cluster.isvcs()) == {f"{NAME}-v2-0", f"{NAME}-v2-1"}
        assert f"{NAME}-v1" not in cluster.services()

    eventually(v1_gone)


def _ingress_backend(cluster: Cluster) -> str:
    [rule] = cluster.ingresses()[NAME]["spec"]["rules"]
    [path] = rule["http"]["paths"]
    return str(path["backend"]["service"]["name"])


def _assert_ready_replicas(cluster: Cluster, count: int) -> None:
    status = cluster.disvc(NAME).get("status") or {}
    assert status.get("readyReplicas") == count, status
    assert status.get("replicas") == count, status


def _reconciles(controller: RunningController) -> float:
    # a reconcile mid-rollout asks to come back by its progress deadline (requeue_after)
    return sum(
        controller.metric(
            "controller_runtime_reconcile_total", controller="distributedinferenceservice", result=result
        ) or 0.0
        for result in ("success", "requeue_after")
    )
