"""Properties of every rollout strategy over random sequences of template
changes, scales, readiness changes and controller restarts.

After every reconcile, for the plan it writes:

- rolling: creates never take the ISVC count above ``replicas + maxSurge``,
  and deletes never take the Ready count below ``replicas - maxUnavailable``
  (or below what was Ready before, when readiness already fell);
- blue/green and canary: an ISVC of the serving generation is deleted only by
  a scale-down of that generation or once its successor is wholly Ready;
- every strategy: once every ISVC is Ready the rollout finishes (a canary
  waits for its promotion), with exactly ``replicas`` ISVCs of one generation;
- every strategy, with a scale-down delay: the generation traffic leaves is
  not deleted in the step that moves traffic off it, and a generation that
  traffic left (its ``status.history`` entry closed) loses nothing until the
  delay has passed since then, even when a revert makes it the target again,
  unless the step puts traffic back on it: then only its replicas above
  ``replicas`` may go, as for any serving generation;
- every strategy: the status never runs ahead of the objects its plan writes
  (the generation it calls active is the one the Ingress routes to, or the
  Ingress spans every generation), and the Ingresses name only Services that
  exist once the plan is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from disvc_world import disvc, reconcile, with_spec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from disvc.builders import desired, names, scaledown
from disvc.builders.desired import BuildOptions
from disvc.builders.generation import is_ready, live_generations
from disvc.builders.spec import RolloutSpec
from disvc.builders.types import Obj

OPTIONS = BuildOptions(now="2024-01-01T00:00:00Z")

ROLLOUTS = st.one_of(
    st.just(None),
    st.builds(
        lambda surge, unavailable: {"strategy": "Rolling", "maxSurge": surge, "maxUnavailable": unavailable},
        st.sampled_from([0, 1, 2, "50%"]),
        st.sampled_from([0, 1, "34%"]),
    ).filter(lambda r: not (r["maxSurge"] == 0 and r["maxUnavailable"] == 0)),
    st.builds(lambda p: {"canaryTrafficPercent": p}, st.sampled_from([0, 30, 100])),
)

ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("template"), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("scale"), st.integers(0, 4)),
        st.tuples(st.just("ready"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("all-ready"), st.just(True)),
        st.tuples(st.just("restart"), st.just(True)),
        st.tuples(st.just("reconcile"), st.just(True)),
        st.tuples(st.just("wait"), st.integers(1, 40)),
    ),
    min_size=1,
    max_size=30,
)


def _isvcs(live: list[Obj]) -> list[Obj]:
    return [o for o in live if o["kind"] == "InferenceService"]


def _generation_of(name: str) -> int:
    parsed = names.parse_isvc_name("model", name)
    assert parsed is not None
    return parsed[0]


def _backends(live: list[Obj]) -> dict[str, str]:
    return {
        o["metadata"]["name"]: o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
        for o in live
        if o["kind"] == "Ingress"
    }


def _check(
    obj: Obj, live: list[Obj], after_obj: Obj, after: list[Obj], want: desired.Desired, now: str = ""
) -> None:
    spec = obj["spec"]
    replicas = spec.get("replicas", 1)
    rollout = spec.get("rollout") or {}
    plan = want.plan
    before_isvcs = _isvcs(live)
    deleted = {r.name for r in plan.delete if r.kind == "InferenceService"}
    created = [o for o in plan.create if o["kind"] == "InferenceService"]

    if rollout.get("strategy") == "Rolling":
        parsed = RolloutSpec(
            strategy="Rolling", max_surge=rollout["maxSurge"], max_unavailable=rollout["maxUnavailable"]
        )
        if created:
            assert len(before_isvcs) + len(created) <= replicas + parsed.surge(replicas)
        ready_before = sum(is_ready(o) for o in before_isvcs)
        ready_after = sum(is_ready(o) for o in before_isvcs if o["metadata"]["name"] not in deleted)
        if ready_after < ready_before:
            assert ready_after >= replicas - parsed.unavailable(replicas)
    else:
        serving = names.parse_generation_label((obj.get("status") or {}).get("activeGeneration"))
        generations = live_generations("model", obj["metadata"]["uid"], live)
        for name in deleted:
            number, index = names.parse_isvc_name("model", name) or (0, 0)
            if number != serving:
                continue
            scale_down = index >= replicas and after_obj["status"].get("activeGeneration") == names.generation_label(number)
            successor_ready = any(
                n != serving and gen.has_service and gen.is_complete(replicas) for n, gen in generations.items()
            )
            assert scale_down or successor_ready, f"serving ISVC {name} deleted early"

    delay = rollout.get("scaleDownDelaySeconds", 30)
    serving = names.parse_generation_label((obj.get("status") or {}).get("activeGeneration"))
    left_by_switch = serving is not None and after_obj["status"].get("activeGeneration") != names.generation_label(serving)
    gone = {names.parse_generation_name("model", r.name) or (names.parse_isvc_name("model", r.name) or (None,))[0]
            for r in plan.delete}
    if delay > 0 and left_by_switch:
        # a rolling rollout drains the old ISVCs itself; the old Service always waits
        assert f"model-{names.generation_label(serving)}" not in {r.name for r in plan.delete}
        if rollout.get("strategy") != "Rolling":
            assert serving not in gone, f"generation {serving} deleted with the switch"
    before_generations = live_generations("model", obj["metadata"]["uid"], live)
    back = names.parse_generation_label(after_obj["status"].get("activeGeneration"))
    for number, gen in before_generations.items():
        at = scaledown.switched_at(obj.get("status") or {}, gen)
        if number not in gone or at is None or number == serving:
            continue
        if number == back:
            # a revert switched straight back to it: traffic is on it again,
            # and it loses only what a scale-down of the serving generation does
            trimmed = [index for r in plan.delete if r.kind == "InferenceService"
                       for n, index in [names.parse_isvc_name("model", r.name) or (0, 0)] if n == number]
            assert all(index >= replicas for index in trimmed), f"generation {number} lost {trimmed} on its return"
            assert f"model-{names.generation_label(number)}" not in {r.name for r in plan.delete}
            continue
        waited = (_time(now) - at).total_seconds()
        assert waited >= delay, f"generation {number} deleted {waited}s after traffic left it"

    # the status never runs ahead of what this plan writes
    status = after_obj["status"]
    active = status.get("activeGeneration")
    services = {o["metadata"]["name"] for o in after if o["kind"] == "Service"}
    for ingress_name, backend in _backends(after).items():
        assert backend in services, f"Ingress {ingress_name} routes to missing Service {backend}"
    main = _backends(after).get("model")
    if main is not None and main != "model":
        assert active == main.removeprefix("model-"), (active, main)
    if active is not None:
        assert f"model-{active}" in services


def _time(now: str) -> datetime:
    return datetime.fromisoformat(now)


def _options(clock: int) -> BuildOptions:
    return BuildOptions(now=(_time(OPTIONS.now) + timedelta(seconds=clock)).strftime("%Y-%m-%dT%H:%M:%SZ"))


ROLLING = {"strategy": "Rolling", "maxSurge": 1, "maxUnavailable": 0}
SERVING_THEN_CHANGE = [("reconcile", True), ("all-ready", True), ("template", "b")]


@settings(max_examples=200, deadline=None)
@given(rollout=ROLLOUTS, start=st.integers(0, 3), actions=ACTIONS, delay=st.sampled_from([0, 30]))
@example(rollout=ROLLING, start=3, actions=[*SERVING_THEN_CHANGE, ("all-ready", True), ("scale", 1)], delay=0)
@example(rollout=None, start=2, actions=[*SERVING_THEN_CHANGE, ("ready", 0, True), ("template", "a")], delay=0)
@example(rollout={"canaryTrafficPercent": 30}, start=2, actions=[*SERVING_THEN_CHANGE, ("all-ready", True)], delay=0)
# a switch, then a revert and a new rollout while the old generation waits out its delay
@example(rollout=None, start=2, actions=[*SERVING_THEN_CHANGE, ("all-ready", True), ("reconcile", True),
                                         ("wait", 10), ("template", "a"), ("all-ready", True),
                                         ("template", "c"), ("wait", 25), ("all-ready", True)], delay=30)
@example(rollout=ROLLING, start=3, actions=[*SERVING_THEN_CHANGE, ("all-ready", True), ("all-ready", True),
                                            ("all-ready", True), ("template", "c"), ("wait", 5), ("all-ready", True)],
         delay=30)
# found by hypothesis: a revert to the waiting generation at 0 replicas switches
# straight back to it, which then scales to 0 (traffic is on it again)
@example(rollout=None, start=1, actions=[("template", "a"), ("template", "b"), ("scale", 0), ("template", "a")],
         delay=30)
# a revert to the waiting generation that cannot switch back at once (a replica
# no longer Ready) holds it beside the serving one without trimming it
@example(rollout=None, start=2, actions=[*SERVING_THEN_CHANGE, ("all-ready", True), ("scale", 1),
                                         ("ready", 0, False), ("template", "a")], delay=30)
# ISVCs held by the delay count against a rolling surge
@example(rollout={"strategy": "Rolling", "maxSurge": 0, "maxUnavailable": 1}, start=0,
         actions=[("template", "b"), ("template", "a"), ("scale", 1), ("template", "b"), ("template", "a")], delay=30)
def test_every_strategy_keeps_its_bounds_over_random_changes(
    rollout: dict[str, Any] | None, start: int, actions: list[tuple[Any, ...]], delay: int
) -> None:
    spec = {"rollout": rollout} if rollout is not None else None
    obj = disvc(replicas=start, annotations={"version": "a"}, spec=spec, scale_down_delay=delay)
    live: list[Obj] = []
    clock = 0
    for action in actions:
        kind = action[0]
        if kind == "wait":
            clock += action[1]
        if kind == "template":
            obj = with_spec(obj, annotations={"version": action[1]})
        elif kind == "scale":
            obj = with_spec(obj, replicas=action[1])
        elif kind in ("ready", "all-ready"):
            isvcs = [o["metadata"]["name"] for o in _isvcs(live)]
            chosen = set(isvcs) if kind == "all-ready" else ({isvcs[action[1] % len(isvcs)]} if isvcs else set())
            flag = True if kind == "all-ready" else action[2]
            live = [
                {**o, "status": {"conditions": [{"type": "Ready", "status": "True" if flag else "False"}]}}
                if o["metadata"]["name"] in chosen
                else o
                for o in live
            ]
        elif kind == "restart":
            obj = {k: v for k, v in obj.items() if k != "status"}
        options = _options(clock)
        after_obj, after, want = reconcile(obj, live, options)
        _check(obj, live, after_obj, after, want, options.now)
        obj, live = after_obj, after
        # a plan that leaves more to do says so; follow it as the controller would
        while want.recheck_after == 0.0:
            after_obj, after, want = reconcile(obj, live, options)
            _check(obj, live, after_obj, after, want, options.now)
            obj, live = after_obj, after
    kept = scaledown.leaving(obj.get("status") or {}, live_generations("model", obj["metadata"]["uid"], live),
                             delay, _options(clock).now)
    generations = {_generation_of(o["metadata"]["name"]) for o in _isvcs(live)} - set(kept)
    assert len(generations) <= 3

    # once every ISVC turns Ready, every rollout finishes (a canary waits for promotion)
    for _ in range(40):
        before = obj["status"]
        live = [{**o, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
                if o["kind"] == "InferenceService" else o for o in live]
        options = _options(clock)
        after_obj, after, want = reconcile(obj, live, options)
        _check(obj, live, after_obj, after, want, options.now)
        obj, live = after_obj, after
        if want.recheck_after:
            clock += int(-(-want.recheck_after // 1))  # the requeue the controller asks for
            continue
        if want.plan.is_empty and obj["status"] == before:
            break
    replicas = obj["spec"].get("replicas", 1)
    progressing = next(c for c in obj["status"]["conditions"] if c["type"] == "Progressing")
    active = obj["status"]["activeGeneration"]
    if progressing["reason"] == "CanaryRunning":
        generation_services = [o for o in live if o["kind"] == "Service" and o["metadata"]["name"] != "model"]
        assert len(generation_services) == 2
    else:
        assert progressing["reason"] == "Converged", progressing
        assert sorted(o["metadata"]["name"] for o in _isvcs(live)) == sorted(
            f"model-{active}-{i}" for i in range(replicas)
        )
