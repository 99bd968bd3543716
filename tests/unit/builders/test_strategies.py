"""Rollout strategies step by step: what exists, where traffic goes, what status says.

Each test drives the builders reconcile by reconcile with ``disvc_world`` and
checks what a user would see after each step: the ISVCs, the Ingress
backends, ``status.activeGeneration``, the per-generation counts and the
conditions.
"""

from __future__ import annotations

import copy
from typing import Any

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

from disvc.builders import desired, history
from disvc.builders.desired import BuildOptions
from disvc.builders.types import Obj

ROLLING = {"strategy": "Rolling", "maxSurge": 1, "maxUnavailable": 0}


def _backend(live: list[Obj], name: str = "model") -> str:
    ingress = find(live, "Ingress", name)
    return str(ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"])


def _isvcs(live: list[Obj]) -> list[str]:
    return sorted(named(live, "InferenceService"))


def _generations(obj: Obj) -> list[tuple[str, int, int, int | None]]:
    return [
        (g["name"], g["replicas"], g["readyReplicas"], g.get("trafficPercent"))
        for g in obj["status"].get("generations", [])
    ]


def _serving(replicas: int, rollout: dict[str, Any] | None = None) -> tuple[Obj, list[Obj]]:
    spec = {"rollout": rollout} if rollout is not None else None
    return settle(disvc(replicas=replicas, annotations={"version": "v1"}, spec=spec))


def _to_v2(obj: Obj, **changes: Any) -> Obj:
    return with_spec(obj, annotations={"version": "v2"}, **changes)


# --- Rolling ------------------------------------------------------------------


def test_rolling_replaces_one_isvc_at_a_time_within_surge_and_availability() -> None:
    obj, live = _serving(3, ROLLING)
    obj = _to_v2(obj)

    obj, live, first = reconcile(obj, live)
    assert named(first.plan.create) == ["model-v2-0", "model-v2"]
    assert first.plan.delete == ()
    assert _backend(live) == "model"  # the DISVC-level Service spans both generations
    assert obj["status"]["activeGeneration"] == "v1"
    assert _generations(obj) == [("v1", 3, 3, 100), ("v2", 1, 0, None)]
    assert (obj["status"]["replicas"], obj["status"]["readyReplicas"]) == (4, 3)
    assert condition(obj["status"], "Progressing")["reason"] == "RollingOut"
    assert condition(obj["status"], "Ready")["status"] == "True"
    assert [e.reason for e in first.events] == ["RolloutStarted", "Updated"]

    # nothing new is Ready: at replicas + maxSurge, nothing more may happen
    obj, live, waiting = reconcile(obj, live)
    assert waiting.plan.is_empty

    live = set_ready(live, {"model-v2-0"})
    obj, live, drained = reconcile(obj, live)
    assert [r.name for r in drained.plan.delete] == ["model-v1-2"]
    assert drained.plan.create == ()
    assert drained.recheck_after == 0.0  # room for the next new ISVC: come back at once
    assert _generations(obj) == [("v1", 2, 2, 66), ("v2", 1, 1, 34)]

    obj, live, refilled = reconcile(obj, live)
    assert named(refilled.plan.create) == ["model-v2-1"]
    assert refilled.recheck_after is None

    for index in (1, 2):
        live = set_ready(live, {f"model-v2-{index}"})
        obj, live, _ = reconcile(obj, live)
        obj, live, _ = reconcile(obj, live)
    assert _isvcs(live) == ["model-v2-0", "model-v2-1", "model-v2-2"]
    assert _backend(live) == "model-v2"
    assert "model-v1" not in named(live, "Service")
    assert obj["status"]["activeGeneration"] == "v2"
    assert "generations" not in obj["status"]
    assert condition(obj["status"], "Progressing")["reason"] == "Converged"
    final = desired.state(obj, live, OPTIONS)
    assert final.plan.is_empty and final.status == obj["status"]


def test_rolling_with_max_unavailable_and_no_surge_deletes_before_it_creates() -> None:
    obj, live = _serving(2, {"strategy": "Rolling", "maxSurge": 0, "maxUnavailable": 1})
    obj, live, first = reconcile(_to_v2(obj), live)
    assert [r.name for r in first.plan.delete] == ["model-v1-1"]
    assert named(first.plan.create) == ["model-v2"]  # the Service only: no room for an ISVC yet
    obj, live, second = reconcile(obj, live)
    assert named(second.plan.create) == ["model-v2-0"]
    assert _isvcs(live) == ["model-v1-0", "model-v2-0"]


def test_rolling_percentages_resolve_like_a_deployment() -> None:
    # 25% of 3: surge rounds up to 1, unavailable rounds down to 0
    obj, live = _serving(3, {"strategy": "Rolling", "maxSurge": "25%", "maxUnavailable": "25%"})
    _, _, first = reconcile(_to_v2(obj), live)
    assert named(first.plan.create) == ["model-v2-0", "model-v2"]
    assert first.plan.delete == ()


def test_scaling_during_a_rolling_rollout_counts_against_the_new_replicas() -> None:
    obj, live = _serving(2, ROLLING)
    obj, live, _ = reconcile(_to_v2(obj), live)
    live = set_ready(live)
    obj, live, _ = reconcile(with_spec(obj, replicas=4), live)
    # 4 + 1 surge allowed, 3 live: two more of v2
    assert _isvcs(live) == ["model-v1-0", "model-v1-1", "model-v2-0", "model-v2-1", "model-v2-2"]
    obj, live = _drive(obj, live)
    assert _isvcs(live) == [f"model-v2-{i}" for i in range(4)]
    assert obj["status"]["activeGeneration"] == "v2" and _backend(live) == "model-v2"


def test_reverting_during_a_rolling_rollout_drains_the_new_generation_and_creates_none() -> None:
    obj, live = _serving(3, ROLLING)
    obj, live, _ = reconcile(_to_v2(obj), live)
    live = set_ready(live)
    obj, live, _ = reconcile(obj, live)  # one v1 replaced
    obj, live, _ = reconcile(obj, live)
    assert _isvcs(live) == ["model-v1-0", "model-v1-1", "model-v2-0", "model-v2-1"]

    reverted = with_spec(obj, annotations={"version": "v1"})
    obj, live = _drive(reverted, live)
    assert _isvcs(live) == ["model-v1-0", "model-v1-1", "model-v1-2"]
    assert sorted(named(live, "Service")) == ["model", "model-v1"]
    assert _backend(live) == "model-v1"
    assert obj["status"]["activeGeneration"] == "v1"
    assert [h["generation"] for h in obj["status"]["history"]] == ["v1"]


def test_a_restarted_controller_resumes_a_rolling_rollout_without_duplicates() -> None:
    obj, live = _serving(3, ROLLING)
    obj, live, _ = reconcile(_to_v2(obj), live)
    live = set_ready(live)
    obj, live, _ = reconcile(obj, live)
    forgotten = {k: v for k, v in obj.items() if k != "status"}
    want = desired.state(forgotten, live, OPTIONS)
    assert named(want.plan.create) == ["model-v2-1"]  # the next step, nothing twice
    assert want.status["activeGeneration"] == "v1"
    assert not any("v3" in n for n in named(want.plan.create))


# --- Blue/green ---------------------------------------------------------------


def test_blue_green_reports_both_generations_while_the_new_one_comes_up() -> None:
    obj, live = _serving(2)
    obj, live, _ = reconcile(_to_v2(obj), live)
    assert _generations(obj) == [("v1", 2, 2, 100), ("v2", 2, 0, None)]
    assert (obj["status"]["replicas"], obj["status"]["readyReplicas"]) == (2, 2)


def test_blue_green_switch_records_history_and_rollback_restores_the_previous_template() -> None:
    obj, live = _serving(1)
    obj, live = settle(_to_v2(obj), live, BuildOptions(now="2024-01-01T01:00:00Z"))
    entries = obj["status"]["history"]
    assert [(e["generation"], e["servedFrom"], e.get("servedUntil")) for e in entries] == [
        ("v1", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"),
        ("v2", "2024-01-01T01:00:00Z", None),
    ]
    # the status keeps what users read; the template is in the ControllerRevision
    assert all("template" not in e for e in entries)
    assert (history.template_of(live, "v2") or {})["annotations"] == {"version": "v2"}

    rolled_back = history.rollback(history.resolved(obj, live))
    assert rolled_back["spec"]["annotations"] == {"version": "v1"}
    assert "status" not in rolled_back
    obj, live = settle(with_spec({**obj, "spec": rolled_back["spec"]}), live)
    assert _isvcs(live) == ["model-v3-0"]  # a rollback is a new generation with the old template
    assert [e["generation"] for e in obj["status"]["history"]] == ["v1", "v2", "v3"]


def test_rollback_mid_rollout_restores_the_serving_template() -> None:
    obj, live = _serving(1)
    obj, live, _ = reconcile(_to_v2(obj), live)
    assert history.rollback(history.resolved(obj, live))["spec"]["annotations"] == {"version": "v1"}


def test_history_keeps_only_the_last_generations() -> None:
    obj, live = _serving(1)
    for version in range(2, 9):
        obj, live = settle(with_spec(obj, annotations={"version": f"v{version}"}), live)
    assert [e["generation"] for e in obj["status"]["history"]] == [f"v{n}" for n in range(4, 9)]
    with pytest.raises(history.NoRollbackTarget, match="no kept template for generation v2"):
        history.rollback(obj, to="v2")


# --- Canary -------------------------------------------------------------------


def _canary(percent: int = 20) -> tuple[Obj, list[Obj]]:
    """v1 serving, v2 complete beside it and taking ``percent`` of traffic."""
    obj, live = _serving(2, {"canaryTrafficPercent": percent})
    obj, live, _ = reconcile(_to_v2(obj), live)
    assert "model-canary" not in named(live, "Ingress")  # nothing Ready to send it to yet
    obj, live = settle(obj, live)
    return obj, live


def test_canary_sends_its_share_through_a_second_ingress_and_waits() -> None:
    obj, live = _canary(20)
    canary = find(live, "Ingress", "model-canary")
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] == "true"
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "20"
    assert _backend(live, "model-canary") == "model-v2"
    assert canary["spec"]["rules"][0]["host"] == find(live, "Ingress", "model")["spec"]["rules"][0]["host"]
    assert _backend(live) == "model-v1"
    assert obj["status"]["activeGeneration"] == "v1"
    assert _generations(obj) == [("v1", 2, 2, 80), ("v2", 2, 2, 20)]
    assert condition(obj["status"], "Progressing")["reason"] == "CanaryRunning"
    assert desired.state(obj, live, OPTIONS).plan.is_empty  # waits for the user


@pytest.mark.parametrize("promote", [{"canaryTrafficPercent": 100}, {}], ids=["set-100", "removed"])
def test_promoting_a_canary_switches_traffic_and_deletes_the_old_generation(promote: dict[str, Any]) -> None:
    obj, live = _canary(20)
    obj, live, switched = reconcile(with_spec(obj, rollout={**promote, "scaleDownDelaySeconds": 0}), live)
    assert [r.name for r in switched.plan.delete] == ["model-canary", "model-v1-1", "model-v1-0", "model-v1"]
    assert _backend(live) == "model-v2"
    assert obj["status"]["activeGeneration"] == "v2"


@pytest.mark.parametrize("promote", [{"canaryTrafficPercent": 100}, {}], ids=["set-100", "removed"])
def test_promoting_a_canary_keeps_the_old_generation_for_the_default_delay(promote: dict[str, Any]) -> None:
    obj, live = _canary(20)
    obj, live, switched = reconcile(with_spec(obj, rollout=promote), live)
    assert [r.name for r in switched.plan.delete] == ["model-canary"]
    assert _backend(live) == "model-v2"
    assert obj["status"]["activeGeneration"] == "v2"
    assert _generations(obj) == [("v1", 2, 2, 0), ("v2", 2, 2, 100)]
    assert condition(obj["status"], "Progressing")["reason"] == "ScaleDownDelay"
    assert switched.recheck_after == 30.0

    after = BuildOptions(now="2024-01-01T00:00:30Z")
    obj, live, gone = reconcile(obj, live, after)
    assert sorted(r.name for r in gone.plan.delete) == ["model-v1", "model-v1-0", "model-v1-1"]
    assert condition(obj["status"], "Progressing")["reason"] == "Converged"


def test_reverting_a_canary_deletes_the_new_generation_and_its_ingress() -> None:
    obj, live = _canary(20)
    obj, live, reverted = reconcile(with_spec(obj, annotations={"version": "v1"}), live)
    assert reverted.plan.create == ()
    assert sorted(r.name for r in reverted.plan.delete) == ["model-canary", "model-v2", "model-v2-0", "model-v2-1"]
    assert _backend(live) == "model-v1"
    assert condition(obj["status"], "Progressing")["reason"] == "Converged"


def test_changing_the_canary_share_updates_only_the_weight() -> None:
    obj, live = _canary(20)
    obj, live, changed = reconcile(with_spec(obj, rollout={"canaryTrafficPercent": 50}), live)
    assert named(changed.plan.update) == ["model-canary"] and changed.plan.delete == ()
    assert find(live, "Ingress", "model-canary")["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/canary-weight"
    ] == "50"


# --- Progress deadline --------------------------------------------------------


def _failed(live: list[Obj], name: str) -> list[Obj]:
    failed = {"type": "Ready", "status": "False", "reason": "PredictorFailed", "message": "CrashLoopBackOff"}
    return [{**o, "status": {"conditions": [failed]}} if o["metadata"]["name"] == name else o for o in live]


@pytest.mark.parametrize("rollout", [None, ROLLING, {"canaryTrafficPercent": 10}], ids=["blue-green", "rolling", "canary"])
def test_a_rollout_past_its_deadline_is_reported_and_the_serving_generation_kept(rollout: dict[str, Any] | None) -> None:
    obj, live = _serving(2, rollout)
    obj, live, _ = reconcile(_to_v2(obj), live)
    live = _failed(live, "model-v2-0")

    early = desired.state(obj, live, BuildOptions(now="2024-01-01T00:04:00Z"))
    assert condition(early.status, "Progressing")["reason"] == "RollingOut"
    assert early.recheck_after == 360.0

    late = BuildOptions(now="2024-01-01T00:10:01Z")
    want = desired.state(obj, live, late)
    progressing = condition(want.status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert "model-v2-0 Ready=False (PredictorFailed: CrashLoopBackOff)" in progressing["message"]
    assert want.plan.is_empty
    assert want.status["activeGeneration"] == "v1"
    assert [(e.type, e.reason) for e in want.events] == [("Warning", "ProgressDeadlineExceeded")]
    again = desired.state({**obj, "status": want.status}, live, late)
    assert again.events == () and again.status == want.status


def test_a_scale_up_past_its_deadline_is_reported() -> None:
    obj, live = settle(disvc(replicas=1))
    obj, live, _ = reconcile(with_spec(obj, replicas=2), live)
    want = desired.state(obj, live, BuildOptions(now="2024-01-01T00:10:01Z"))
    assert condition(want.status, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert "model-v1-1 not Ready" in condition(want.status, "Progressing")["message"]


def test_the_deadline_follows_spec_rollout_progress_deadline_seconds() -> None:
    obj, live = _serving(1, {"progressDeadlineSeconds": 60})
    obj, live, _ = reconcile(_to_v2(obj), live)
    want = desired.state(obj, live, BuildOptions(now="2024-01-01T00:01:01Z"))
    assert condition(want.status, "Progressing")["reason"] == "ProgressDeadlineExceeded"


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rollout", "field"),
    [
        ({"strategy": "Rolling", "maxSurge": 0, "maxUnavailable": "0%"}, "spec.rollout.maxSurge"),
        ({"strategy": "Canary"}, "spec.rollout.strategy"),
        ({"maxSurge": "150%"}, "spec.rollout.maxSurge"),
        ({"maxUnavailable": -1}, "spec.rollout.maxUnavailable"),
        ({"canaryTrafficPercent": 101}, "spec.rollout.canaryTrafficPercent"),
        ({"strategy": "Rolling", "canaryTrafficPercent": 10}, "spec.rollout.canaryTrafficPercent"),
        ({"progressDeadlineSeconds": 0}, "spec.rollout.progressDeadlineSeconds"),
        ("fast", "spec.rollout"),
    ],
)
def test_an_invalid_rollout_is_named_and_changes_nothing(rollout: Any, field: str) -> None:
    obj, live = _serving(2)
    want = desired.state(with_spec(obj, rollout=rollout, annotations={"version": "v2"}), live, OPTIONS)
    ready = condition(want.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith(field + ":")
    assert want.plan.is_empty
    assert want.status["history"] == obj["status"]["history"]


def _drive(
    obj: Obj, live: list[Obj], options: BuildOptions = OPTIONS, rounds: int = 40
) -> tuple[Obj, list[Obj]]:
    """Reconcile, marking every ISVC Ready between reconciles, until nothing changes."""
    for _ in range(rounds):
        before = copy.deepcopy(obj.get("status"))
        obj, live, want = reconcile(obj, set_ready(live), options, ready=lambda n: True)
        if want.plan.is_empty and want.status == before:
            return obj, set_ready(live)
    raise AssertionError("did not converge")


# --- Gateway API --------------------------------------------------------------

GATEWAY = BuildOptions(now="2024-01-01T00:00:00Z", gateway_api=True)
PUBLIC = {"gateway": {"name": "public", "namespace": "infra", "sectionName": "https"}}


def _refs(live: list[Obj]) -> list[tuple[str, int | None]]:
    route = find(live, "HTTPRoute", "model")
    [rule] = route["spec"]["rules"]
    return [(ref["name"], ref.get("weight")) for ref in rule["backendRefs"]]


def test_a_gateway_replaces_the_ingress_with_an_http_route() -> None:
    obj, live = _drive(disvc(replicas=2, spec={"ingress": PUBLIC}), [], GATEWAY)
    assert named(live, "Ingress") == []
    route = find(live, "HTTPRoute", "model")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "namespace": "infra", "sectionName": "https"}
    ]
    assert route["spec"]["hostnames"] == ["model-ns.example.com"]
    assert route["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert _refs(live) == [("model-v1", None)]
    # no Gateway has accepted the route yet: no URL is claimed (test_route_status.py)
    assert "url" not in obj["status"]


@pytest.mark.parametrize(
    ("rollout", "during", "ready"),
    [
        (None, [("model-v1", None)], [("model-v2", None)]),
        (ROLLING, [("model", None)], [("model-v2", None)]),
        ({"canaryTrafficPercent": 20}, [("model-v1", None)], [("model-v1", 80), ("model-v2", 20)]),
    ],
    ids=["blue-green", "rolling", "canary"],
)
def test_every_strategy_routes_through_the_http_route(
    rollout: dict[str, Any] | None, during: list[tuple[str, int | None]], ready: list[tuple[str, int | None]]
) -> None:
    spec: dict[str, Any] = {"ingress": PUBLIC}
    if rollout is not None:
        spec["rollout"] = rollout
    obj, live = _drive(disvc(replicas=2, annotations={"version": "v1"}, spec=spec), [], GATEWAY)
    obj, live, _ = reconcile(_to_v2(obj), live, GATEWAY)
    assert _refs(live) == during
    obj, live = _drive(obj, live, GATEWAY)
    assert _refs(live) == ready
    obj, live = _drive(with_spec(obj, rollout={}), live, GATEWAY)  # promotes a canary
    assert _refs(live) == [("model-v2", None)]
    assert named(live, "Ingress") == []


def test_naming_a_gateway_moves_traffic_from_the_ingress_to_an_http_route() -> None:
    obj, live = _drive(disvc(replicas=1), [], GATEWAY)
    assert named(live, "Ingress") == ["model"]
    obj, live, moved = reconcile(with_spec(obj, ingress=PUBLIC), live, GATEWAY)
    assert named(moved.plan.create) == ["model"] and moved.plan.create[0]["kind"] == "HTTPRoute"
    assert [(r.kind, r.name) for r in moved.plan.delete] == [("Ingress", "model")]


def test_a_gateway_without_gateway_api_support_is_an_invalid_spec() -> None:
    want = desired.state(disvc(spec={"ingress": PUBLIC}), [], OPTIONS)
    ready = condition(want.status, "Ready")
    assert (ready["reason"], ready["message"].split(":")[0]) == ("InvalidSpec", "spec.ingress.gateway")
    assert want.plan.is_empty


@pytest.mark.parametrize(
    ("ingress", "field"),
    [
        ({"gateway": {"namespace": "infra"}}, "spec.ingress.gateway.name"),
        ({"gateway": {"name": "public"}, "className": "nginx"}, "spec.ingress.className"),
        ({"gateway": {"name": "public", "namespace": "Infra"}}, "spec.ingress.gateway.namespace"),
    ],
)
def test_an_invalid_gateway_is_named(ingress: dict[str, Any], field: str) -> None:
    want = desired.state(disvc(spec={"ingress": ingress}), [], GATEWAY)
    assert condition(want.status, "Ready")["message"].startswith(field + ":")


def test_percentages_that_both_round_to_zero_still_let_a_rolling_rollout_progress() -> None:
    # 0% surge and 34% of 2 unavailable: 0 and 0, so one may be unavailable, as for a Deployment
    obj, live = _serving(2, {"strategy": "Rolling", "maxSurge": "0%", "maxUnavailable": "34%"})
    obj, live = _drive(_to_v2(obj), live)
    assert _isvcs(live) == ["model-v2-0", "model-v2-1"]
