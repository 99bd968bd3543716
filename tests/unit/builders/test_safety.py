"""Safety: foreign objects, invalid specs and deleted DISVCs never lose serving children."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from disvc_world import (
    LATER,
    OPTIONS,
    SKLEARN,
    as_live,
    condition,
    disvc,
    find,
    named,
    reconcile,
    settle,
    with_spec,
)

from disvc.builders import desired


def _foreign(kind: str, name: str, owner_uid: str | None = None) -> dict[str, Any]:
    obj = as_live(
        {
            "apiVersion": "v1" if kind == "Service" else "serving.kserve.io/v1beta1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "ns", "labels": {"disvc": "model"}},
            "spec": {"selector": {"app": "other"}} if kind == "Service" else {"predictor": {}},
        }
    )
    if owner_uid:
        obj["metadata"]["ownerReferences"] = [
            {"kind": "DistributedInferenceService", "name": "x", "uid": owner_uid, "controller": True}
        ]
    return obj


@pytest.mark.parametrize("owner", [None, "someone-else"], ids=["unowned", "other-owner"])
def test_foreign_object_with_a_child_name_is_a_conflict_never_written(owner: str | None) -> None:
    foreign = _foreign("Service", "model", owner)
    want = desired.state(disvc(), [foreign], OPTIONS)
    assert want.plan.conflicts == (foreign,)
    assert "model" not in named(want.plan.create, "Service")
    assert all(r.name != "model" for r in want.plan.delete)
    # the Ingress (and the ControllerRevision of the generation that serves)
    assert named(want.plan.create) == ["model-v1-0", "model-v1", "model", "model-revision-v1"]
    ready = condition(want.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ChildConflict")
    assert "Service model" in ready["message"]
    warnings = [e for e in want.events if e.type == "Warning"]
    assert [(w.reason, "Service model" in w.message) for w in warnings] == [("ChildConflict", True)]


def test_conflict_warning_is_not_repeated_for_the_same_problem() -> None:
    foreign = _foreign("Service", "model")
    first = desired.state(disvc(), [foreign], OPTIONS)
    again = desired.state({**disvc(), "status": first.status}, [foreign], LATER)
    assert [e for e in again.events if e.type == "Warning"] == []
    assert again.status["conditions"] == first.status["conditions"]


def test_foreign_object_not_desired_is_not_deleted() -> None:
    stray = _foreign("InferenceService", "model-v1-7", owner_uid="someone-else")
    want = desired.state(disvc(), [stray], OPTIONS)
    assert want.plan.delete == () and want.plan.conflicts == ()


def test_ingress_is_not_pointed_at_a_foreign_generation_service() -> None:
    want = desired.state(disvc(), [_foreign("Service", "model-v1")], OPTIONS)
    assert named(want.plan.create) == ["model-v1-0", "model", "model-revision-v1"]
    assert [o["kind"] for o in want.plan.create] == ["InferenceService", "Service", "ControllerRevision"]


@dataclass(frozen=True)
class InvalidCase:
    id: str
    spec: dict[str, Any]
    field: str
    name: str = "model"
    drop_template: bool = False


INVALID = [
    InvalidCase("both-spellings", {"inferenservice": SKLEARN}, "spec.inferenceService"),
    InvalidCase("no-template", {}, "spec.inferenceService", drop_template=True),
    InvalidCase("no-predictor", {"inferenceService": {"transformer": {}}}, "spec.inferenceService.predictor"),
    InvalidCase("template-not-mapping", {"inferenceService": ["predictor"]}, "spec.inferenceService"),
    InvalidCase("negative-replicas", {"replicas": -1}, "spec.replicas"),
    InvalidCase("replicas-not-int", {"replicas": "3"}, "spec.replicas"),
    InvalidCase("name-too-long", {}, "metadata.name", name="m" * 51),
    InvalidCase("name-not-dns-label", {}, "metadata.name", name="my.model"),
    InvalidCase("annotations-not-strings", {"annotations": {"a": 1}}, "spec.annotations.a"),
    InvalidCase("ingress-host-invalid", {"ingress": {"host": "Not A Host"}}, "spec.ingress.host"),
    InvalidCase("too-many-replicas-for-name", {"replicas": 10**13}, "spec.replicas", name="m" * 50),
]


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_spec_reports_the_field_and_keeps_serving_children(case: InvalidCase) -> None:
    obj, live = settle(disvc(replicas=2))
    broken = with_spec(obj, **case.spec)
    broken["metadata"]["name"] = case.name
    if case.drop_template:
        del broken["spec"]["inferenceService"]
    want = desired.state(broken, live, LATER)
    assert want.plan.is_empty and want.plan.conflicts == ()
    ready = condition(want.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith(case.field)
    assert ready["lastTransitionTime"] == LATER.now
    assert [(e.type, e.reason) for e in want.events] == [("Warning", "InvalidSpec")]
    if case.name == "model":
        # the children still serve: the status keeps saying so
        assert want.status["readyReplicas"] == 2
        assert want.status["url"] == obj["status"]["url"]
        assert want.status["address"] == obj["status"]["address"]


def test_default_ingress_host_too_long_for_dns_asks_for_an_override() -> None:
    want = desired.state(disvc(name="m" * 40, namespace="n" * 40), [], OPTIONS)
    ready = condition(want.status, "Ready")
    assert (ready["reason"], ready["message"].split(":")[0]) == ("InvalidSpec", "spec.ingress.host")
    fixed = disvc(name="m" * 40, namespace="n" * 40, spec={"ingress": {"host": "m.example.com"}})
    assert desired.state(fixed, [], OPTIONS).plan.create


def test_deleted_disvc_gets_an_empty_plan_and_unchanged_status() -> None:
    obj, live = settle(disvc(replicas=2))
    obj = copy.deepcopy(obj)
    obj["metadata"]["deletionTimestamp"] = "2024-01-02T00:00:00Z"
    want = desired.state(with_spec(obj, replicas=0), live, LATER)
    assert want.plan.is_empty and want.events == ()
    assert want.status == obj["status"]


def test_terminating_children_are_neither_reapplied_nor_deleted_again() -> None:
    obj, live = settle(disvc(replicas=2))
    live = copy.deepcopy(live)
    for child in live:
        if child["metadata"]["name"] in ("model-v1-0", "model-v1-1"):
            child["metadata"]["deletionTimestamp"] = "2024-01-02T00:00:00Z"
    want = desired.state(with_spec(obj, replicas=1), live, OPTIONS)
    assert want.plan.is_empty
    assert want.status["replicas"] == 0


def test_builders_never_mutate_their_inputs() -> None:
    obj, live = settle(disvc(replicas=2, spec={"ingress": {"tls": {"secretName": "s"}}}))
    changed = with_spec(obj, annotations={"version": "v9"}, replicas=3)
    frozen_obj, frozen_live = copy.deepcopy(changed), copy.deepcopy(live)
    want = desired.state(changed, live, LATER)
    assert changed == frozen_obj and live == frozen_live
    # and the output shares no mutable parts with the input template
    find(want.plan.create, "InferenceService", "model-v2-0")["spec"]["predictor"]["x"] = 1
    assert changed == frozen_obj


def test_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    obj, live = settle(disvc(replicas=2))
    shrunk = desired.state(with_spec(obj, replicas=1), live, LATER)
    before, after = condition(obj["status"], "Ready"), condition(shrunk.status, "Ready")
    assert (before["status"], after["status"]) == ("True", "True")
    assert after["lastTransitionTime"] == before["lastTransitionTime"] == OPTIONS.now
    assert after["observedGeneration"] == 2


def test_condition_gets_a_new_transition_time_when_its_status_flips() -> None:
    obj, live = settle(disvc(replicas=1))
    grown = desired.state(with_spec(obj, replicas=2), live, LATER)
    ready = condition(grown.status, "Ready")
    assert (ready["status"], ready["lastTransitionTime"]) == ("False", LATER.now)
    assert ready["message"] == "1/2 replicas ready"


def test_a_rejected_child_stops_progressing_instead_of_claiming_work_under_way() -> None:
    obj = disvc(replicas=1)
    want = desired.state(obj, [], OPTIONS)
    assert condition(want.status, "Progressing")["status"] == "True"  # before the refusal: Scaling

    refused = desired.rejected(obj, want, "admission webhook denied the request", OPTIONS)

    ready, progressing = refused.status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "ChildRejected")
    assert ready["message"] == "admission webhook denied the request"
    assert (progressing["type"], progressing["status"], progressing["reason"]) == (
        "Progressing",
        "False",
        "ChildRejected",
    )
    assert [(e.type, e.reason) for e in refused.events] == [("Warning", "ChildRejected")]


def test_a_rejection_reported_again_is_no_news() -> None:
    obj = disvc(replicas=1)
    want = desired.state(obj, [], OPTIONS)
    first = desired.rejected(obj, want, "denied", OPTIONS)
    reported = {**obj, "status": first.status}

    again = desired.rejected(reported, desired.state(reported, [], LATER), "denied", LATER)

    assert again.status == first.status  # same transition times: no status write
    assert again.events == ()


def test_a_refused_switch_reports_the_generation_that_still_serves() -> None:
    """The route's update was refused: status must not claim the new
    generation (activeGeneration, address) that the plan meant to serve."""
    served, live = settle(disvc(replicas=1))
    assert served["status"]["activeGeneration"] == "v1"
    changed = with_spec(served, inferenceService={"predictor": {"model": {**SKLEARN["predictor"]["model"],
                                                                          "runtimeVersion": "2"}}})
    obj = changed
    switch = None
    for _ in range(6):  # up to the reconcile whose plan moves traffic to v2
        want = desired.state(obj, as_ready(live), OPTIONS)
        if want.status.get("activeGeneration") == "v2":
            switch = want
            break
        obj, live, _ = reconcile(obj, as_ready(live), ready=lambda n: True)
    assert switch is not None and switch.plan.update, "no switch found"

    refused = desired.rejected(obj, switch, "services is forbidden: exceeded quota", LATER)

    assert refused.status["activeGeneration"] == "v1"
    assert refused.status.get("address") == obj["status"].get("address")
    assert refused.status["observedGeneration"] == 2
    assert condition(refused.status, "Ready")["reason"] == "ChildRejected"


def as_ready(live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [as_live(o, ready=True) if o["kind"] == "InferenceService" else o for o in live]
