"""Scaling and rolling updates, reconcile by reconcile, as a user would watch them."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
from disvc_world import (
    OPTIONS,
    condition,
    disvc,
    find,
    named,
    reconcile,
    set_ready,
    settle,
    with_spec,
)

from disvc.builders import desired


def _backend(live: list[dict]) -> str:
    ingress = find(live, "Ingress", "model")
    return ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]


@dataclass(frozen=True)
class ReplicasCase:
    id: str
    replicas: int
    isvcs: list[str]


@pytest.mark.parametrize(
    "case",
    [
        ReplicasCase("zero", 0, []),
        ReplicasCase("one", 1, ["model-v1-0"]),
        ReplicasCase("three", 3, ["model-v1-0", "model-v1-1", "model-v1-2"]),
    ],
    ids=lambda c: c.id,
)
def test_replicas_give_that_many_isvcs_behind_the_same_services(case: ReplicasCase) -> None:
    obj, live = settle(disvc(replicas=case.replicas))
    assert named(live, "InferenceService") == case.isvcs
    assert sorted(named(live, "Service")) == ["model", "model-v1"]
    assert _backend(live) == "model-v1"
    assert obj["status"]["replicas"] == case.replicas
    assert obj["status"]["readyReplicas"] == case.replicas
    assert condition(obj["status"], "Ready")["status"] == "True"


def test_converged_world_is_not_written_again() -> None:
    obj, live = settle(disvc(replicas=2))
    want = desired.state(obj, live, OPTIONS)
    assert want.plan.is_empty and not want.plan.conflicts
    assert want.status == obj["status"]
    assert want.events == ()


def test_scale_up_adds_isvcs_and_leaves_services_and_ingress_alone() -> None:
    obj, live = settle(disvc(replicas=1))
    want = desired.state(with_spec(obj, replicas=3), live, OPTIONS)
    assert named(want.plan.create) == ["model-v1-1", "model-v1-2"]
    assert want.plan.update == () and want.plan.delete == ()
    assert [(e.reason, e.message) for e in want.events] == [
        ("Scaled", "Scaled generation v1 from 1 to 3 replicas")
    ]
    assert condition(want.status, "Progressing")["reason"] == "Scaling"


def test_scale_down_removes_highest_index_first() -> None:
    obj, live = settle(disvc(replicas=4))
    want = desired.state(with_spec(obj, replicas=1), live, OPTIONS)
    assert [r.name for r in want.plan.delete] == ["model-v1-3", "model-v1-2", "model-v1-1"]
    assert want.plan.create == () and want.plan.update == ()
    assert [e.reason for e in want.events] == ["Scaled"]
    assert condition(want.status, "Ready")["status"] == "True"


def test_rollout_keeps_old_generation_serving_until_new_one_is_ready() -> None:
    obj, live = settle(disvc(replicas=2, annotations={"version": "v1"}))
    obj = with_spec(obj, annotations={"version": "v2"})

    obj, live, started = reconcile(obj, live)
    assert named(started.plan.create) == ["model-v2-0", "model-v2-1", "model-v2"]
    assert started.plan.update == () and started.plan.delete == ()
    assert _backend(live) == "model-v1"
    assert obj["status"]["activeGeneration"] == "v1"
    assert obj["status"]["address"]["url"] == "http://model-v1.ns.svc.cluster.local"
    assert condition(obj["status"], "Progressing")["reason"] == "RollingOut"
    assert [e.reason for e in started.events] == ["RolloutStarted"]

    live = set_ready(live, {"model-v2-0"})
    obj, live, half = reconcile(obj, live)
    assert half.plan.is_empty and _backend(live) == "model-v1"

    live = set_ready(live, {"model-v2-1"})
    obj, live, switched = reconcile(obj, live)
    assert [(o["kind"], o["metadata"]["name"]) for o in switched.plan.update] == [
        ("Ingress", "model")
    ]
    assert [r.name for r in switched.plan.delete] == ["model-v1-1", "model-v1-0", "model-v1"]
    assert _backend(live) == "model-v2"
    assert obj["status"]["activeGeneration"] == "v2"
    assert obj["status"]["address"]["url"] == "http://model-v2.ns.svc.cluster.local"
    assert [e.reason for e in switched.events] == ["RolloutComplete"]

    final = desired.state(obj, live, OPTIONS)
    assert final.plan.is_empty and final.events == () and final.status == obj["status"]


def test_change_during_rollout_supersedes_the_unfinished_generation() -> None:
    obj, live = settle(disvc(annotations={"version": "v1"}))
    obj, live, _ = reconcile(with_spec(obj, annotations={"version": "v2"}), live)
    obj, live, superseded = reconcile(with_spec(obj, annotations={"version": "v3"}), live)
    assert named(superseded.plan.create) == ["model-v3-0", "model-v3"]
    assert [r.name for r in superseded.plan.delete] == ["model-v2-0", "model-v2"]
    assert "model-v1-0" in named(live) and _backend(live) == "model-v1"
    assert obj["status"]["activeGeneration"] == "v1"


def test_reverting_during_rollout_returns_to_the_serving_generation() -> None:
    obj, live = settle(disvc(annotations={"version": "v1"}))
    obj, live, _ = reconcile(with_spec(obj, annotations={"version": "v2"}), live)
    obj, live, reverted = reconcile(with_spec(obj, annotations={"version": "v1"}), live)
    assert reverted.plan.create == () and reverted.plan.update == ()
    assert [r.name for r in reverted.plan.delete] == ["model-v2-0", "model-v2"]
    assert condition(obj["status"], "Progressing")["reason"] == "Converged"


def test_restarted_controller_resumes_a_rollout_from_live_objects_alone() -> None:
    obj, live = settle(disvc(annotations={"version": "v1"}))
    obj, live, _ = reconcile(with_spec(obj, annotations={"version": "v2"}), live)
    forgotten = {k: v for k, v in obj.items() if k != "status"}
    want = desired.state(forgotten, live, OPTIONS)
    assert want.plan.is_empty
    assert want.status["activeGeneration"] == "v1"
    assert condition(want.status, "Progressing")["reason"] == "RollingOut"


def test_template_change_of_propagated_annotation_starts_a_rollout() -> None:
    obj, live = settle(disvc())
    changed = copy.deepcopy(obj)
    changed["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    want = desired.state(changed, live, OPTIONS)
    assert named(want.plan.create) == ["model-v2-0", "model-v2"]
    isvc = find(want.plan.create, "InferenceService", "model-v2-0")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"


def test_unrelated_metadata_annotation_does_not_start_a_rollout() -> None:
    obj, live = settle(disvc())
    changed = copy.deepcopy(obj)
    changed["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    assert desired.state(changed, live, OPTIONS).plan.is_empty


def test_rollout_with_scale_change_brings_new_generation_up_at_new_size() -> None:
    obj, live = settle(disvc(replicas=1, annotations={"version": "v1"}))
    changed = with_spec(obj, annotations={"version": "v2"}, replicas=2)
    want = desired.state(changed, live, OPTIONS)
    assert named(want.plan.create) == ["model-v2-0", "model-v2-1", "model-v2"]
    assert want.plan.delete == ()
    obj, live = settle(changed, live)
    assert named(live, "InferenceService") == ["model-v2-0", "model-v2-1"]
    assert obj["status"]["replicas"] == 2


def test_rollout_at_zero_replicas_switches_once_the_generation_service_exists() -> None:
    obj, live = settle(disvc(replicas=0, annotations={"version": "v1"}))
    obj, live = settle(with_spec(obj, annotations={"version": "v2"}), live)
    assert sorted(named(live)) == ["model", "model", "model-revision-v1", "model-revision-v2", "model-v2"]
    assert _backend(live) == "model-v2"


def test_scale_to_zero_and_back_keeps_the_generation() -> None:
    obj, live = settle(disvc(replicas=2))
    obj, live = settle(with_spec(obj, replicas=0), live)
    assert named(live, "InferenceService") == []
    obj, live = settle(with_spec(obj, replicas=1), live)
    assert named(live, "InferenceService") == ["model-v1-0"]
    assert obj["status"]["activeGeneration"] == "v1"
