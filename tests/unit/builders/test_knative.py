"""KServe's Knative mode: the mode a DISVC's ISVCs run in, and Services that keep Knative working.

Facts the expectations rest on (KServe ``pkg/constants/constants.go``
``ParseDeploymentMode``; Knative ``pkg/reconciler/revision/resources/queue.go``,
``meta.go``, ``configuration/resources/revision.go``): the modes are spelled
Standard/RawDeployment and Knative/Serverless; queue-proxy serves on the port
named ``queue-port``; a revision's pods carry its
``serving.knative.dev/configurationGeneration`` label, and revision ``n`` is
named ``<configuration>-0000n``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from disvc_world import OPTIONS, condition, disvc, find, named, reconcile, settle, with_spec

from disvc.builders import desired, isvc, mode, spec
from disvc.builders.types import Obj

KNATIVE_LABEL = "serving.knative.dev/configurationGeneration"


def knative_status(name: str, ready: int, created: int | None = None, copies: int = 1, **extra: Any) -> Obj:
    """The status KServe writes for a Knative-mode ISVC whose predictor's latest
    ready revision is ``ready`` (and latest created ``created``)."""
    created = ready if created is None else created
    return {
        "deploymentMode": "Knative",
        "observedGeneration": 7,  # the Knative Service's generation, never the ISVC's
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "PredictorReady", "status": "True"}],
        "components": {
            "predictor": {
                "latestReadyRevision": f"{name}-predictor-{ready:05d}",
                "latestCreatedRevision": f"{name}-predictor-{created:05d}",
            }
        },
        "modelStatus": {"copies": {"failedCopies": 0, "totalCopies": copies}},
        **extra,
    }


def with_status(live: list[Obj], status_of: Any) -> list[Obj]:
    return [
        {**obj, "status": status_of(obj["metadata"]["name"])} if obj["kind"] == "InferenceService" else obj
        for obj in live
    ]


def serverless(replicas: int = 2, value: str = "Serverless", **kwargs: Any) -> Obj:
    return disvc(replicas=replicas, metadata_annotations={mode.ANNOTATION: value}, **kwargs)


@dataclass(frozen=True)
class ModeCase:
    id: str
    annotation: str | None
    default: mode.Mode | None
    knative: bool


@pytest.mark.parametrize(
    "case",
    [
        ModeCase("serverless", "Serverless", None, True),
        ModeCase("knative", "Knative", None, True),
        ModeCase("rawdeployment", "RawDeployment", None, False),
        ModeCase("standard", "Standard", None, False),
        ModeCase("none", None, None, False),
        ModeCase("flag-knative", None, "Knative", True),
        ModeCase("annotation-beats-flag", "RawDeployment", "Knative", False),
    ],
    ids=lambda c: c.id,
)
def test_services_reach_knative_pods_through_queue_proxy_never_8080(case: ModeCase) -> None:
    annotations = {mode.ANNOTATION: case.annotation} if case.annotation else None
    options = replace(OPTIONS, default_deployment_mode=case.default)
    _, live = settle(disvc(replicas=2, metadata_annotations=annotations), options=options)
    for name in ("model", "model-v1"):
        service = find(live, "Service", name)
        (port,) = service["spec"]["ports"]
        selector = service["spec"]["selector"]
        assert service["spec"]["sessionAffinity"] == "ClientIP"
        if case.knative:
            assert port["targetPort"] == "queue-port"
            assert selector["component"] == "predictor"
            assert selector[KNATIVE_LABEL] == "1"
        else:
            assert port["targetPort"] == 8080
            assert KNATIVE_LABEL not in selector
    if case.default is not None and case.annotation is None:
        stamped = find(live, "InferenceService", "model-v1-0")["metadata"]["annotations"]
        assert stamped[mode.ANNOTATION] == case.default


def test_grpc_in_knative_mode_targets_queue_port_by_name_with_h2c() -> None:
    template = {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "ports": [{"name": "h2c", "containerPort": 8081}]}}}
    _, live = settle(serverless(template=template))
    (port,) = find(live, "Service", "model-v1")["spec"]["ports"]
    assert port == {
        "name": "grpc",
        "port": 80,
        "protocol": "TCP",
        "targetPort": "queue-port",
        "appProtocol": "kubernetes.io/h2c",
    }


def test_an_unknown_mode_is_an_invalid_spec_naming_the_annotation() -> None:
    obj, live = reconcile(serverless(value="serverless"), [])[:2]
    ready = condition(obj["status"], "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert f"metadata.annotations[{mode.ANNOTATION}]" in ready["message"]
    assert live == []


@pytest.mark.parametrize("value", ["Serverless", "Knative"])
def test_scale_to_zero_in_knative_mode_is_refused_naming_the_field(value: str) -> None:
    template = {"predictor": {"minReplicas": 0, "model": {"modelFormat": {"name": "sklearn"}}}}
    obj, live = reconcile(serverless(value=value, template=template), [])[:2]
    ready = condition(obj["status"], "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.inferenceService.predictor.minReplicas" in ready["message"] and "scale to zero" in ready["message"]
    assert live == []
    with pytest.raises(spec.InvalidSpec, match="minReplicas"):
        desired.children(serverless(value=value, template=template), 1, OPTIONS)


def test_scale_to_zero_stays_allowed_in_standard_mode() -> None:
    template = {"predictor": {"minReplicas": 0, "model": {"modelFormat": {"name": "sklearn"}}}}
    obj, _ = settle(disvc(template=template))
    assert condition(obj["status"], "Ready")["status"] == "True"


def test_a_name_shaped_like_another_disvcs_isvc_is_refused_in_knative_mode() -> None:
    obj, live = reconcile(serverless(name="other-v1-0"), [])[:2]
    ready = condition(obj["status"], "Ready")
    assert ready["reason"] == "InvalidSpec" and "metadata.name" in ready["message"]
    assert "-v<number>-<number>" in ready["message"]
    assert live == []


def test_the_mode_is_part_of_the_generation() -> None:
    standard = isvc.template_hash(spec.parse(disvc()))
    stamped = mode.with_default(spec.parse(disvc()), "Knative")
    assert isvc.template_hash(stamped) != standard
    # a changed mode rolls out a new generation
    obj, live = settle(disvc(replicas=1))
    changed = with_spec(obj)
    changed["metadata"]["annotations"] = {mode.ANNOTATION: "Knative"}
    obj, live = settle(changed, live)
    assert named(live, "InferenceService") == ["model-v2-0"]
    assert find(live, "Service", "model-v2")["spec"]["ports"][0]["targetPort"] == "queue-port"


def test_services_pin_the_revision_ready_isvcs_serve_and_follow_it() -> None:
    obj, live = settle(serverless())
    live = with_status(live, lambda name: knative_status(name, ready=1))
    obj, live, want = reconcile(obj, live)
    assert want.plan.is_empty
    # KServe re-rendered both ISVCs: revision 2 is ready on both
    live = with_status(live, lambda name: knative_status(name, ready=2))
    obj, live, want = reconcile(obj, live)
    assert sorted(o["metadata"]["name"] for o in want.plan.update) == ["model", "model-v1"]
    for name in ("model", "model-v1"):
        assert find(live, "Service", name)["spec"]["selector"][KNATIVE_LABEL] == "2"
    assert obj["status"]["readyReplicas"] == 2


def test_an_isvc_whose_latest_revision_is_not_ready_is_not_counted_ready() -> None:
    obj, live = settle(serverless())
    live = with_status(
        live,
        lambda name: knative_status(name, ready=1, created=2 if name.endswith("-1") else 1),
    )
    obj, live, _ = reconcile(obj, live)
    assert obj["status"]["readyReplicas"] == 1
    assert condition(obj["status"], "Ready")["status"] == "False"
    # the Services keep the revision the Ready ISVC serves
    assert find(live, "Service", "model-v1")["spec"]["selector"][KNATIVE_LABEL] == "1"


def test_an_isvc_without_ready_copies_is_not_counted_ready() -> None:
    obj, live = settle(serverless())
    live = with_status(live, lambda name: knative_status(name, ready=1, copies=0))
    obj, _, _ = reconcile(obj, live)
    assert obj["status"]["readyReplicas"] == 0


def test_knative_observed_generation_is_not_compared_with_the_isvc_generation() -> None:
    obj, live = settle(serverless())
    live = with_status(live, lambda name: knative_status(name, ready=1))
    assert all(o["metadata"].get("generation", 1) != 7 for o in live if o["kind"] == "InferenceService")
    obj, _, _ = reconcile(obj, live)
    assert obj["status"]["readyReplicas"] == 2
    assert condition(obj["status"], "Ready")["status"] == "True"


def test_kserves_reported_mode_wins_when_nothing_was_asked() -> None:
    obj, live = settle(disvc(replicas=2))
    assert find(live, "Service", "model-v1")["spec"]["ports"][0]["targetPort"] == 8080
    live = with_status(live, lambda name: knative_status(name, ready=1))
    obj, live, _ = reconcile(obj, live)
    assert find(live, "Service", "model-v1")["spec"]["ports"][0]["targetPort"] == "queue-port"
    assert find(live, "Service", "model")["spec"]["ports"][0]["targetPort"] == "queue-port"
    assert condition(obj["status"], "Ready")["status"] == "True"


def test_children_in_another_mode_than_asked_give_a_mode_mismatch() -> None:
    obj, live = settle(disvc(replicas=2, metadata_annotations={mode.ANNOTATION: "Standard"}))
    live = with_status(live, lambda name: knative_status(name, ready=1))
    obj, live, _ = reconcile(obj, live)
    ready = condition(obj["status"], "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "DeploymentModeMismatch")
    assert "model-v1-0" in ready["message"] and "Knative" in ready["message"]
    # KServe's word is final: the Services follow it
    assert find(live, "Service", "model-v1")["spec"]["ports"][0]["targetPort"] == "queue-port"


def test_children_disagreeing_with_each_other_give_a_mode_mismatch() -> None:
    obj, live = settle(serverless())
    live = with_status(
        live,
        lambda name: knative_status(name, ready=1)
        if name.endswith("-0")
        else {"deploymentMode": "Standard", "conditions": [{"type": "Ready", "status": "True"}]},
    )
    obj, _, _ = reconcile(obj, live)
    ready = condition(obj["status"], "Ready")
    assert ready["reason"] == "DeploymentModeMismatch" and "different modes" in ready["message"]


def test_a_rejected_knative_mode_is_reported() -> None:
    obj, live = settle(serverless())
    live = with_status(live, lambda name: {"deploymentMode": "Knative"})
    obj, _, _ = reconcile(obj, live)
    ready = condition(obj["status"], "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ServerlessModeRejected")
    assert "Knative Serving is not installed" in ready["message"]


def test_a_converged_knative_disvc_is_not_written_again() -> None:
    obj, live = settle(serverless())
    live = with_status(live, lambda name: knative_status(name, ready=3))
    obj, live, _ = reconcile(obj, live)
    want = desired.state(obj, live, OPTIONS)
    assert want.plan.is_empty and want.status == obj["status"] and want.events == ()
