"""Properties over random histories: a status never runs ahead of the objects
its own plan writes, and a plan that leaves another step says so.

Each history is a random sequence of template changes, scales, readiness
changes and reconciles, played through ``disvc_world.reconcile`` (the
controller's write order, the API server's defaults). After every reconcile
the world holds exactly what was written; the status written with it must
describe that world, and when more remains to be done the reconcile must ask
to come back at once rather than wait for the echo of its own writes.
"""

from __future__ import annotations

from typing import Any

from disvc_world import disvc, find, reconcile, set_ready, with_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disvc.builders import desired
from disvc.builders.types import Obj

NAME = "model"

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("template"), st.sampled_from(["v1", "v2", "v3"])),
        st.tuples(st.just("scale"), st.integers(min_value=0, max_value=3)),
        st.tuples(st.just("ready"), st.booleans()),
        st.tuples(st.just("ready-one"), st.integers(min_value=0, max_value=3)),
        st.just(("reconcile", None)),
    ),
    min_size=1,
    max_size=25,
)


def generation_of(name: str, number: str) -> bool:
    return name.startswith(f"{NAME}-{number}-")


ROLLOUTS = st.sampled_from([
    None,
    {"strategy": "Rolling", "maxSurge": 1, "maxUnavailable": 0},
    {"strategy": "Rolling", "maxSurge": 0, "maxUnavailable": 1},
    {"strategy": "Rolling", "maxSurge": "50%", "maxUnavailable": "50%"},
    {"canaryTrafficPercent": 30},
])


def check_status_describes(world: list[Obj], status: dict[str, Any]) -> None:
    active = status.get("activeGeneration")
    if active is None:
        return
    names = {(o["kind"], o["metadata"]["name"]) for o in world}
    assert ("Service", f"{NAME}-{active}") in names, f"status serves {active} before its Service exists"
    ingress = find(world, "Ingress", NAME)
    [rule] = ingress["spec"]["rules"]
    routed = rule["http"]["paths"][0]["backend"]["service"]["name"]
    if routed == NAME:
        # a rolling rollout: the DISVC-level Service spans every generation
        isvcs = [o for o in world if o["kind"] == "InferenceService"]
    else:
        assert routed == f"{NAME}-{active}", f"status says {active}, the Ingress routes to {routed}"
        isvcs = [o for o in world if o["kind"] == "InferenceService" and generation_of(o["metadata"]["name"], active)]
    assert status["replicas"] == len(isvcs)
    ready = [o for o in isvcs if o["status"]["conditions"][0]["status"] == "True"]
    assert status["readyReplicas"] == len(ready)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, rollout=ROLLOUTS)
def test_status_never_runs_ahead_and_every_pending_step_is_announced(
    steps: list[tuple[str, Any]], rollout: dict[str, Any] | None
) -> None:
    spec = {"rollout": rollout} if rollout is not None else None
    obj = disvc(NAME, replicas=1, annotations={"version": "v1"}, spec=spec)
    world: list[Obj] = []
    for action, value in [("reconcile", None), *steps, ("reconcile", None)]:
        if action == "template":
            obj = with_spec(obj, annotations={"version": value})
        elif action == "scale":
            obj = with_spec(obj, replicas=value)
        elif action == "ready":
            world = set_ready(world, ready=value)
        elif action == "ready-one":
            isvcs = sorted(o["metadata"]["name"] for o in world if o["kind"] == "InferenceService")
            if isvcs:
                world = set_ready(world, {isvcs[value % len(isvcs)]})
        else:
            obj, world, want = reconcile(obj, world)
            check_status_describes(world, obj["status"])
            if want.recheck_after != 0:
                again = desired.state(obj, world, desired.BuildOptions(now="2024-01-01T00:00:00Z"))
                assert again.plan.is_empty, (
                    "the plan left another step but did not ask to come back: "
                    f"{[o['metadata']['name'] for o in (*again.plan.create, *again.plan.update)]} "
                    f"{[r.name for r in again.plan.delete]}"
                )
