"""SPEC "Safety" end to end: the controller repairs what it owns, leaves alone
what it does not, and survives a spec it cannot build."""

from __future__ import annotations

from typing import Any

import yaml

from disvc.testing.fixtures import KubeEnv, eventually, needs_kserve_schema
from disvc.testing.kserve_stub import KServeStub

from .harness import POC1, Cluster, RunningController, condition

NAME = "sklearn-v2-iris-rest"
Obj = dict[str, Any]


def poc1() -> Obj:
    doc: Obj = yaml.safe_load(POC1.read_text())
    return doc


def apply_disvc(kube: KubeEnv, doc: Obj) -> None:
    kube.apply_yaml(yaml.safe_dump(doc))


def converged(cluster: Cluster) -> None:
    status = cluster.disvc(NAME).get("status") or {}
    assert (condition(cluster.disvc(NAME), "Ready") or {}).get("status") == "True", status
    assert {NAME, f"{NAME}-v1"} <= set(cluster.services())
    assert NAME in cluster.ingresses()


def test_a_child_deleted_by_hand_is_recreated(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    apply_disvc(kube, poc1())
    eventually(lambda: converged(cluster))
    old_uid = cluster.services()[f"{NAME}-v1"]["metadata"]["uid"]

    cluster.core.delete_namespaced_service(f"{NAME}-v1", kube.namespace)

    def recreated() -> None:
        service = cluster.services().get(f"{NAME}-v1")
        assert service is not None
        assert service["metadata"]["uid"] != old_uid
        assert service["spec"]["selector"] == {"disvc.group": f"{NAME}-v1"}

    eventually(recreated)


def test_a_child_edited_by_hand_is_put_back(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    apply_disvc(kube, poc1())
    eventually(lambda: converged(cluster))

    cluster.raw(
        "PATCH", f"/api/v1/namespaces/{kube.namespace}/services/{NAME}",
        body={"spec": {"sessionAffinity": "None", "selector": {"app": "somebody-else"}}},
        content_type="application/merge-patch+json",
    )

    def restored() -> None:
        spec = cluster.services()[NAME]["spec"]
        assert spec["sessionAffinity"] == "ClientIP"
        assert spec["selector"] == {"disvc": NAME}

    eventually(restored)


def test_a_foreign_object_with_a_child_name_is_left_alone_and_reported(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    foreign = cluster.raw("POST", f"/api/v1/namespaces/{kube.namespace}/services", body={
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "labels": {"app": "not-ours"}},
        "spec": {"selector": {"app": "not-ours"}, "ports": [{"port": 9000, "targetPort": 9000}]},
    })

    apply_disvc(kube, poc1())

    def conflict_reported() -> None:
        ready = condition(cluster.disvc(NAME), "Ready")
        assert ready is not None
        assert (ready["status"], ready["reason"]) == ("False", "ChildConflict")
        warnings = [e for e in cluster.events(NAME) if e["type"] == "Warning"]
        assert [e["reason"] for e in warnings] == ["ChildConflict"]
        assert warnings[0]["involvedObject"]["kind"] == "DistributedInferenceService"
        assert warnings[0]["source"]["component"] == "disvc-controller"

    eventually(conflict_reported)
    service = cluster.services()[NAME]
    assert service["metadata"]["uid"] == foreign["metadata"]["uid"]
    assert service["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]
    assert "disvc" not in (service["metadata"].get("labels") or {})
    assert not service["metadata"].get("ownerReferences")

    # Nothing we watch reports the foreign object's deletion (it carries no
    # disvc label): the controller must notice on its own, within 30 s.
    cluster.core.delete_namespaced_service(NAME, kube.namespace)

    def taken_over() -> None:
        service = cluster.services().get(NAME)
        assert service is not None and service["metadata"]["uid"] != foreign["metadata"]["uid"]
        assert service["metadata"]["labels"]["disvc"] == NAME
        assert service["spec"]["selector"] == {"disvc": NAME}
        ready = condition(cluster.disvc(NAME), "Ready")
        assert ready is not None and ready["reason"] != "ChildConflict", ready

    eventually(taken_over, timeout=30)


def test_an_invalid_spec_is_reported_and_keeps_serving_children(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    apply_disvc(kube, poc1())
    eventually(lambda: converged(cluster))
    serving = {name: o["metadata"]["uid"] for name, o in {**cluster.isvcs(), **cluster.services()}.items()}

    broken = poc1()
    broken["spec"]["ingress"] = {"host": "Not_A_Host!"}  # the CRD admits any string here
    apply_disvc(kube, broken)

    def invalid_reported() -> None:
        ready = condition(cluster.disvc(NAME), "Ready")
        assert ready is not None
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
        assert "spec.ingress.host" in ready["message"]
        assert "InvalidSpec" in [e["reason"] for e in cluster.events(NAME) if e["type"] == "Warning"]

    eventually(invalid_reported)
    assert {name: o["metadata"]["uid"] for name, o in {**cluster.isvcs(), **cluster.services()}.items()} == serving
    assert controller.thread is not None and controller.thread.is_alive()

    apply_disvc(kube, poc1())  # the user's fix
    eventually(lambda: converged(cluster))


@needs_kserve_schema
def test_an_isvc_the_api_refuses_is_reported_and_retried_with_backoff(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    broken = poc1()
    # The DISVC schema keeps the template as given; KServe's ISVC schema then
    # refuses it (minReplicas is an integer).
    broken["spec"]["inferenservice"]["predictor"]["minReplicas"] = "two"
    apply_disvc(kube, broken)

    def rejection_reported() -> None:
        ready = condition(cluster.disvc(NAME), "Ready")
        assert ready is not None
        assert (ready["status"], ready["reason"]) == ("False", "ChildRejected")
        assert "minReplicas" in ready["message"]
        progressing = condition(cluster.disvc(NAME), "Progressing")
        assert progressing is not None
        # nothing is under way: the write is only retried with backoff
        assert (progressing["status"], progressing["reason"]) == ("False", "ChildRejected")
        assert "ChildRejected" in [e["reason"] for e in cluster.events(NAME) if e["type"] == "Warning"]

    eventually(rejection_reported)
    assert not cluster.isvcs()
    assert controller.thread is not None and controller.thread.is_alive()

    apply_disvc(kube, poc1())  # the user's fix
    eventually(lambda: set(cluster.isvcs()) == {f"{NAME}-v1-0"})


def test_a_hand_made_isvc_from_the_same_template_is_not_taken_over(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    # Same predictor as the DISVC's template, so no field we set differs: an
    # apply would merge our labels, args and owner into it. It must stay as is.
    foreign = cluster.raw("POST", cluster.isvcs_path(), body={
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": f"{NAME}-v1-0"},
        "spec": {"predictor": poc1()["spec"]["inferenservice"]["predictor"]},
    })  # fmt: skip

    apply_disvc(kube, poc1())

    def conflict_reported() -> None:
        ready = condition(cluster.disvc(NAME), "Ready")
        assert ready is not None
        assert (ready["status"], ready["reason"]) == ("False", "ChildConflict")
        assert f"{NAME}-v1-0" in ready["message"]

    eventually(conflict_reported)
    isvc = cluster.isvcs()[f"{NAME}-v1-0"]
    assert isvc["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]
    assert not isvc["metadata"].get("labels")
    assert not isvc["metadata"].get("ownerReferences")

    cluster.raw("DELETE", cluster.isvcs_path(f"{NAME}-v1-0"))

    def ours_created() -> None:
        isvc = cluster.isvcs().get(f"{NAME}-v1-0")
        assert isvc is not None and isvc["metadata"]["uid"] != foreign["metadata"]["uid"]
        assert isvc["metadata"]["labels"]["disvc"] == NAME
        ready = condition(cluster.disvc(NAME), "Ready")
        assert ready is not None and ready["reason"] != "ChildConflict", ready

    eventually(ours_created, timeout=30)


@needs_kserve_schema
def test_a_typo_in_the_template_is_named_in_status_not_dropped(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    broken = poc1()
    broken["spec"]["inferenservice"]["predictor"]["model"]["storageUrl"] = "gs://typo"
    apply_disvc(kube, broken)

    def typo_reported() -> None:
        ready = condition(cluster.disvc(NAME), "Ready")
        assert ready is not None
        assert (ready["status"], ready["reason"]) == ("False", "ChildRejected")
        assert "storageUrl" in ready["message"]

    eventually(typo_reported)
    assert not cluster.isvcs()
