"""``spec.rollout.scaleDownDelaySeconds``: the generation traffic left stays up
until routers have moved off it, then goes; timed from the status alone.

The clock is the ``now`` each reconcile is given (``BuildOptions``), as the
controller passes it: no test sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from disvc_world import condition, disvc, named, reconcile, set_ready, settle, with_spec

from disvc.builders import desired
from disvc.builders.desired import BuildOptions
from disvc.builders.types import Obj

ROLLING = {"strategy": "Rolling", "maxSurge": 1, "maxUnavailable": 0}


def at(seconds: int) -> BuildOptions:
    """The clock ``seconds`` after the switch of ``_switched`` (at 00:01:00)."""
    minutes, rest = divmod(60 + seconds, 60)
    return BuildOptions(now=f"2024-01-01T00:{minutes:02d}:{rest:02d}Z")


START = BuildOptions(now="2024-01-01T00:00:00Z")


def _switched(
    delay: int | None = None, rollout: dict[str, Any] | None = None, replicas: int = 2
) -> tuple[Obj, list[Obj], desired.Desired]:
    """v1 serving, v2 rolled out and Ready; returns the world right after the
    reconcile (at ``at(0)``) that moved traffic to v2."""
    spec = {"rollout": dict(rollout)} if rollout else None
    obj = disvc(replicas=replicas, annotations={"version": "v1"}, spec=spec, scale_down_delay=delay)
    obj, live = settle(obj, options=START)
    obj = with_spec(obj, annotations={"version": "v2"})
    want = None
    for _ in range(12):
        live = [
            {**o, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
            if o["kind"] == "InferenceService"
            else o
            for o in live
        ]
        obj, live, want = reconcile(obj, live, at(0), ready=lambda n: True)
        if obj["status"].get("activeGeneration") == "v2":
            return obj, live, want
    raise AssertionError("v2 never took over")


def _generations(obj: Obj) -> list[tuple[str, int | None]]:
    return [(g["name"], g.get("trafficPercent")) for g in obj["status"].get("generations", [])]


def _backend(live: list[Obj]) -> str:
    (ingress,) = [o for o in live if o["kind"] == "Ingress" and o["metadata"]["name"] == "model"]
    return str(ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"])


@dataclass(frozen=True)
class Case:
    id: str
    rollout: dict[str, Any] | None = None
    old_isvcs: list[str] = field(default_factory=lambda: ["model-v1-0", "model-v1-1"])
    """What the old generation still has when traffic leaves it."""


CASES = [
    Case("blue-green"),
    Case("canary-promoted", {"canaryTrafficPercent": 100}),
    # rolling: the old ISVCs went one by one; at the end only its Service is left
    Case("rolling", ROLLING, old_isvcs=[]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_old_generation_stays_for_the_delay_then_goes(case: Case) -> None:
    obj, live, switched = _switched(30, case.rollout)
    assert _backend(live) == "model-v2" and obj["status"]["activeGeneration"] == "v2"
    assert sorted(n for n in named(live) if n.startswith("model-v1")) == sorted([*case.old_isvcs, "model-v1"])
    assert obj["status"]["address"]["url"] == "http://model-v2.ns.svc.cluster.local"
    assert [h["generation"] for h in obj["status"]["history"]] == ["v1", "v2"]
    progressing = condition(obj["status"], "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "ScaleDownDelay")
    assert "generation v1 takes no traffic and is deleted at 2024-01-01T00:01:30Z" in progressing["message"]
    assert ("v1", 0) in _generations(obj) and ("v2", 100) in _generations(obj)
    assert switched.recheck_after == 30.0

    # a reconcile during the delay (a resync, an echo) writes nothing and
    # comes back when the delay ends
    midway = desired.state(obj, live, at(12))
    assert midway.plan.is_empty and midway.status == obj["status"]
    assert midway.recheck_after == 18.0

    gone = desired.state(obj, live, at(30))
    assert sorted(r.name for r in gone.plan.delete) == sorted([*case.old_isvcs, "model-v1"])
    assert condition(gone.status, "Progressing")["reason"] == "Converged"
    assert "generations" not in gone.status
    assert gone.status["history"] == obj["status"]["history"]  # history unchanged in meaning


def test_a_delay_of_zero_deletes_the_old_generation_with_the_switch() -> None:
    obj, live, switched = _switched(0)
    assert sorted(r.name for r in switched.plan.delete) == ["model-v1", "model-v1-0", "model-v1-1"]
    assert not [n for n in named(live) if n.startswith("model-v1")]
    assert condition(obj["status"], "Progressing")["reason"] == "Converged"


def test_the_default_delay_is_30_seconds() -> None:
    obj, live, switched = _switched(None)
    assert "model-v1" in named(live, "Service")
    assert switched.recheck_after == 30.0
    assert not desired.state(obj, live, at(29)).plan.delete
    assert desired.state(obj, live, at(30)).plan.delete


def test_a_restarted_controller_derives_the_same_delay_from_live_objects() -> None:
    obj, live, _ = _switched(30)
    # a new process: nothing but the DISVC (with its status) and its children
    restarted = desired.state(obj, live, at(20))
    assert restarted.plan.is_empty
    assert restarted.recheck_after == 10.0
    assert restarted.status == obj["status"]
    assert desired.state(obj, live, at(31)).plan.delete


def test_a_lost_status_write_restarts_the_delay_rather_than_shortening_it() -> None:
    obj, live, _ = _switched(30)
    # the route moved but the status write after it was lost: v1 is still active
    stale = {**obj, "status": {**obj["status"], "activeGeneration": "v1",
                               "history": obj["status"]["history"][:1]}}
    again = desired.state(stale, live, at(40))
    assert not again.plan.delete
    assert again.status["activeGeneration"] == "v2"
    assert again.recheck_after == 30.0


def test_a_revert_during_the_delay_switches_back_to_the_kept_generation() -> None:
    obj, live, _ = _switched(30)
    obj, live, reverted = reconcile(with_spec(obj, annotations={"version": "v1"}), live, at(5))
    assert reverted.plan.create == ()
    assert _backend(live) == "model-v1" and obj["status"]["activeGeneration"] == "v1"
    # v2 is now the generation traffic left: kept for its own delay
    assert "model-v2" in named(live, "Service") and not reverted.plan.delete
    assert [h["generation"] for h in obj["status"]["history"]] == ["v1", "v2", "v1"]
    assert reverted.recheck_after == 30.0
    assert sorted(r.name for r in desired.state(obj, live, at(35)).plan.delete) == [
        "model-v2", "model-v2-0", "model-v2-1",
    ]


def test_a_new_rollout_during_the_delay_never_routes_to_the_old_generation() -> None:
    obj, live, _ = _switched(30)
    obj, live, started = reconcile(with_spec(obj, annotations={"version": "v3"}), live, at(5))
    assert "model-v3-0" in named(started.plan.create)  # numbered above the kept v1
    assert _backend(live) == "model-v2" and obj["status"]["activeGeneration"] == "v2"
    assert "model-v1" in named(live, "Service")
    # the delay still ends when it would have
    obj, live, ended = reconcile(obj, live, at(30))
    assert sorted(r.name for r in ended.plan.delete) == ["model-v1", "model-v1-0", "model-v1-1"]
    assert _backend(live) == "model-v2"
    assert condition(obj["status"], "Progressing")["reason"] == "RollingOut"


def test_a_scale_during_the_delay_scales_the_serving_generation_only() -> None:
    obj, live, _ = _switched(30)
    obj, live, scaled = reconcile(with_spec(obj, replicas=3), live, at(5))
    assert named(scaled.plan.create) == ["model-v2-2"] and not scaled.plan.delete
    assert sorted(named(live, "InferenceService")) == ["model-v1-0", "model-v1-1", "model-v2-0", "model-v2-1", "model-v2-2"]
    assert obj["status"]["replicas"] == 3  # the kept generation is not counted
    progressing = condition(obj["status"], "Progressing")
    assert progressing["reason"] == "Scaling" and "generation v1 takes no traffic" in progressing["message"]


def test_a_revert_that_cannot_switch_back_at_once_keeps_the_waiting_generation_whole() -> None:
    obj, live, _ = _switched(30)
    # v1 waits with both ISVCs; one of them stops being Ready, then the user
    # reverts and scales down in one edit: v1 is the target again but not
    # complete, so traffic stays on v2 and v1 is held beside it
    live = set_ready(live, {"model-v1-0"}, ready=False)
    obj, live, reverted = reconcile(with_spec(obj, annotations={"version": "v1"}, replicas=1), live, at(4))
    assert _backend(live) == "model-v2" and obj["status"]["activeGeneration"] == "v2"
    # routers that have not moved off v1 still reach its Ready model-v1-1:
    # it is surplus now, but goes only once v1's delay has passed
    assert not reverted.plan.delete
    assert "model-v1-1" in named(live, "InferenceService")
    assert reverted.recheck_after == 26.0
    assert not desired.state(obj, live, at(29)).plan.delete
    obj, live, trimmed = reconcile(obj, live, at(30))
    assert [r.name for r in trimmed.plan.delete] == ["model-v1-1"]
    assert _backend(live) == "model-v2"
    assert condition(obj["status"], "Progressing")["reason"] == "RollingOut"


def test_a_revert_at_zero_replicas_switches_back_and_scales_the_returning_generation() -> None:
    """The sequence the property test found (blue/green, replicas 1, no ISVC
    ever Ready, one clock): a no-op template edit, a new template, a scale to
    0 (v2 is complete at 0 replicas: the switch), then the revert to v1.
    Traffic returns to v1 in that reconcile, so its ISVC goes as the serving
    generation's scale-down to 0, not as a generation traffic left; v2, which
    traffic leaves, waits out its own delay."""
    clock = BuildOptions(now="2024-01-01T00:00:00Z")
    obj = disvc(replicas=1, annotations={"version": "a"}, scale_down_delay=30)
    live: list[Obj] = []
    changes: list[dict[str, Any]] = [
        {"annotations": {"version": "a"}}, {"annotations": {"version": "b"}}, {"replicas": 0},
        {"annotations": {"version": "a"}},
    ]
    steps = []
    for change in changes:
        obj, live, want = reconcile(with_spec(obj, **change), live, clock)
        steps.append(want)
        while want.recheck_after == 0.0:
            obj, live, want = reconcile(obj, live, clock)
            steps.append(want)
    switch, revert = steps[-2], steps[-1]
    assert [r.name for r in switch.plan.delete] == ["model-v2-0"]  # v2's scale to 0; v1 waits whole
    assert [r.name for r in revert.plan.delete] == ["model-v1-0"]
    assert revert.plan.create == ()
    assert _backend(live) == "model-v1" and obj["status"]["activeGeneration"] == "v1"
    assert [(h["generation"], "servedUntil" in h) for h in obj["status"]["history"]] == [
        ("v1", True), ("v2", True), ("v1", False),
    ]
    assert sorted(named(live, "Service")) == ["model", "model-v1", "model-v2"]
    progressing = condition(obj["status"], "Progressing")
    assert progressing["reason"] == "ScaleDownDelay"
    assert "generation v2 takes no traffic and is deleted at 2024-01-01T00:00:30Z" in progressing["message"]
    assert revert.recheck_after == 30.0
    assert not desired.state(obj, live, BuildOptions(now="2024-01-01T00:00:29Z")).plan.delete
    ended = desired.state(obj, live, BuildOptions(now="2024-01-01T00:00:30Z"))
    assert [r.name for r in ended.plan.delete] == ["model-v2"]


def test_isvcs_the_delay_holds_count_against_a_rolling_surge() -> None:
    """Rolling, maxSurge 0: v1 waits out its delay (its Service only) when a
    revert to it creates model-v1-0, and a second revert abandons v1 again
    before the delay ends. v1 waits once more, model-v1-0 with it; v2's new
    ISVC must wait for that room rather than take the ISVC count above
    ``replicas + maxSurge``."""
    clock = BuildOptions(now="2024-01-01T00:00:00Z")
    rollout = {"strategy": "Rolling", "maxSurge": 0, "maxUnavailable": 1}
    obj = disvc(replicas=0, annotations={"version": "a"}, spec={"rollout": rollout}, scale_down_delay=30)
    live: list[Obj] = []
    changes: list[dict[str, Any]] = [
        {"annotations": {"version": "b"}}, {"annotations": {"version": "a"}}, {"replicas": 1},
        {"annotations": {"version": "b"}}, {"annotations": {"version": "a"}},
    ]
    for change in changes:
        obj, live, want = reconcile(with_spec(obj, **change), live, clock)
        while want.recheck_after == 0.0:
            obj, live, want = reconcile(obj, live, clock)
        assert len(named(live, "InferenceService")) <= 1
    assert named(live, "InferenceService") == ["model-v1-0"]
    assert obj["status"]["activeGeneration"] == "v2"
    assert want.recheck_after == 30.0
    later = BuildOptions(now="2024-01-01T00:00:30Z")
    obj, live, ended = reconcile(obj, live, later)
    assert sorted(r.name for r in ended.plan.delete) == ["model-v1", "model-v1-0"]
    obj, live, _ = reconcile(obj, live, later)
    assert named(live, "InferenceService") == ["model-v2-0"]
