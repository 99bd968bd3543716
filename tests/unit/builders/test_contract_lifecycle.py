"""SPEC "Status", "Scaling", "Rolling update" and "Safety", statement by statement.

Worlds are driven reconcile by reconcile with the helpers in ``disvc_world``;
each table row is one situation a user can put the DISVC in.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from disvc_world import (
    OPTIONS,
    SKLEARN,
    condition,
    disvc,
    find,
    named,
    reconcile,
    set_ready,
    settle,
    with_spec,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disvc.builders import desired, names
from disvc.builders.desired import BuildOptions
from disvc.builders.generation import is_ready
from disvc.builders.types import Obj

T1 = BuildOptions(now="2024-01-01T00:01:00Z")
T2 = BuildOptions(now="2024-01-01T00:02:00Z")
T3 = BuildOptions(now="2024-01-01T00:03:00Z")

H2C = copy.deepcopy(SKLEARN)
H2C["predictor"]["model"]["ports"] = [{"name": "h2c", "containerPort": 9000, "protocol": "TCP"}]
GRPC_NAMED = copy.deepcopy(SKLEARN)
GRPC_NAMED["predictor"]["model"]["ports"] = [{"name": "grpc", "containerPort": 8081}]

World = tuple[Obj, list[Obj]]


def _backend(live: list[Obj]) -> str:
    ingress = find(live, "Ingress", "model")
    return str(ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"])


def _rollout_started(replicas: int = 2, template: Any = None, spec: dict[str, Any] | None = None) -> World:
    """v1 serving (all Ready), v2 just created beside it (nothing Ready)."""
    obj, live = settle(disvc(replicas=replicas, annotations={"version": "v1"}, spec=spec))
    changes: dict[str, Any] = {"annotations": {"version": "v2"}}
    if template is not None:
        changes["inferenceService"] = template
    obj, live, _ = reconcile(with_spec(obj, **changes), live)
    return obj, live


def _without_status(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k != "status"}


# --- Status fields -------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCase:
    id: str
    world: Callable[[], World]
    expected: dict[str, Any]
    """Every status field but the conditions, exactly."""
    ready: tuple[str, str]
    progressing: tuple[str, str]


def _created(replicas: int) -> Callable[[], World]:
    def world() -> World:
        obj, live, _ = reconcile(disvc(replicas=replicas), [])
        return obj, live

    return world


def _one_ready() -> World:
    obj, live, _ = reconcile(disvc(replicas=2), [])
    obj, live, _ = reconcile(obj, set_ready(live, {"model-v1-0"}))
    return obj, live


def _switched() -> World:
    obj, live = _rollout_started()
    obj, live, _ = reconcile(obj, set_ready(live))
    return obj, live


ADDRESS_V1 = {"url": "http://model-v1.ns.svc.cluster.local"}
URL = "http://model-ns.example.com"

STATUS_CASES = [
    StatusCase(
        "created-nothing-ready",
        _created(2),
        {"observedGeneration": 1, "replicas": 2, "readyReplicas": 0, "selector": "disvc=model", "activeGeneration": "v1"},
        ("False", "ReplicasNotReady"),
        ("True", "Scaling"),
    ),
    StatusCase(
        "one-of-two-ready",
        _one_ready,
        {
            "observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "selector": "disvc=model",
            "activeGeneration": "v1", "url": URL, "address": ADDRESS_V1,
        },
        ("False", "ReplicasNotReady"),
        ("True", "Scaling"),
    ),
    StatusCase(
        "all-ready",
        lambda: settle(disvc(replicas=3)),
        {
            "observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "selector": "disvc=model",
            "activeGeneration": "v1", "url": URL, "address": ADDRESS_V1,
        },
        ("True", "AllReplicasReady"),
        ("False", "Converged"),
    ),
    StatusCase(
        "zero-replicas",
        lambda: settle(disvc(replicas=0)),
        {"observedGeneration": 1, "replicas": 0, "readyReplicas": 0, "selector": "disvc=model", "activeGeneration": "v1"},
        ("True", "AllReplicasReady"),
        ("False", "Converged"),
    ),
    StatusCase(
        "mid-rollout",
        _rollout_started,
        {
            "observedGeneration": 2, "replicas": 2, "readyReplicas": 2, "selector": "disvc=model",
            "activeGeneration": "v1", "url": URL, "address": ADDRESS_V1,
        },
        ("True", "AllReplicasReady"),
        ("True", "RollingOut"),
    ),
    StatusCase(
        "rollout-switched",
        _switched,
        {
            "observedGeneration": 2, "replicas": 2, "readyReplicas": 2, "selector": "disvc=model",
            "activeGeneration": "v2", "url": URL, "address": {"url": "http://model-v2.ns.svc.cluster.local"},
        },
        ("True", "AllReplicasReady"),
        ("False", "Converged"),
    ),
    StatusCase(
        "scaled-generation-3",
        lambda: settle(with_spec(with_spec(disvc(replicas=1), replicas=4), replicas=2)),
        {
            "observedGeneration": 3, "replicas": 2, "readyReplicas": 2, "selector": "disvc=model",
            "activeGeneration": "v1", "url": URL, "address": ADDRESS_V1,
        },
        ("True", "AllReplicasReady"),
        ("False", "Converged"),
    ),
]


@pytest.mark.parametrize("case", STATUS_CASES, ids=lambda c: c.id)
def test_status_reports_the_active_generation(case: StatusCase) -> None:
    obj, live = case.world()
    status = obj["status"]
    # history, per-generation counts and affinity have their own tests
    # (test_strategies.py, test_affinity.py)
    reported = {
        k: v for k, v in status.items() if k not in ("conditions", "history", "generations", "sessionAffinity")
    }
    assert reported == case.expected
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Progressing"]
    for c in status["conditions"]:
        assert set(c) == {"type", "status", "observedGeneration", "lastTransitionTime", "reason", "message"}
        assert c["observedGeneration"] == obj["metadata"]["generation"]
        assert c["message"]
    assert (condition(status, "Ready")["status"], condition(status, "Ready")["reason"]) == case.ready
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == case.progressing
    # readyReplicas counts the active generation's Ready ISVCs, nothing else
    active = f"model-{status['activeGeneration']}-"
    assert status["readyReplicas"] == sum(
        1 for o in live if o["kind"] == "InferenceService" and o["metadata"]["name"].startswith(active) and is_ready(o)
    )


# --- Conditions: lastTransitionTime moves only when the status does --------------------


@dataclass(frozen=True)
class TransitionCase:
    id: str
    steps: Callable[[], list[Obj]]
    """Statuses after each step, the steps at OPTIONS, T1, T2, ... in turn."""
    type_: str
    times: list[str]
    """The condition's lastTransitionTime after each step."""
    statuses: list[str]


def _scale_then_roll() -> list[Obj]:
    obj, live = settle(disvc(replicas=1))
    obj, live, _ = reconcile(with_spec(obj, replicas=2), live, T1)  # Progressing True (Scaling)
    obj2, live, _ = reconcile(with_spec(obj, annotations={"v": "2"}), live, T2)  # True (RollingOut)
    return [obj["status"], obj2["status"]]


def _not_ready_then_invalid_then_ready() -> list[Obj]:
    obj, live, _ = reconcile(disvc(replicas=1), [])  # Ready False ReplicasNotReady at OPTIONS
    bad, _, _ = reconcile(with_spec(obj, replicas=-1), live, T1)  # Ready False InvalidSpec
    fixed, _, _ = reconcile(with_spec(bad, replicas=1), set_ready(live), T2)  # Ready True
    return [obj["status"], bad["status"], fixed["status"]]


def _ready_through_scale_and_rollout() -> list[Obj]:
    obj, live = settle(disvc(replicas=2))
    obj, live, _ = reconcile(with_spec(obj, replicas=1), live, T1)
    obj2, live, _ = reconcile(with_spec(obj, annotations={"v": "2"}), live, T2)
    obj3, live, _ = reconcile(obj2, set_ready(live), T3)
    return [obj["status"], obj2["status"], obj3["status"]]


@pytest.mark.parametrize(
    "case",
    [
        TransitionCase("progressing-scaling-to-rolling-out", _scale_then_roll, "Progressing", [T1.now, T1.now], ["True", "True"]),
        TransitionCase(
            "ready-not-ready-to-invalid-to-ready",
            _not_ready_then_invalid_then_ready,
            "Ready",
            [OPTIONS.now, OPTIONS.now, T2.now],
            ["False", "False", "True"],
        ),
        TransitionCase(
            "ready-true-through-scale-rollout-switch",
            _ready_through_scale_and_rollout,
            "Ready",
            [OPTIONS.now] * 3,
            ["True"] * 3,
        ),
    ],
    ids=lambda c: c.id,
)
def test_last_transition_time_changes_only_with_the_condition_status(case: TransitionCase) -> None:
    statuses = case.steps()
    assert [condition(s, case.type_)["status"] for s in statuses] == case.statuses
    assert [condition(s, case.type_)["lastTransitionTime"] for s in statuses] == case.times


# --- Scaling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleCase:
    id: str
    before: int
    after: int
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


@pytest.mark.parametrize(
    "case",
    [
        ScaleCase("4-to-1", 4, 1, deleted=["model-v1-3", "model-v1-2", "model-v1-1"]),
        ScaleCase("12-to-9-numeric-order", 12, 9, deleted=["model-v1-11", "model-v1-10", "model-v1-9"]),
        ScaleCase("3-to-0", 3, 0, deleted=["model-v1-2", "model-v1-1", "model-v1-0"]),
        ScaleCase("9-to-11", 9, 11, created=["model-v1-9", "model-v1-10"]),
        ScaleCase("0-to-2", 0, 2, created=["model-v1-0", "model-v1-1"]),
    ],
    ids=lambda c: c.id,
)
def test_scaling_changes_only_the_active_generations_isvcs(case: ScaleCase) -> None:
    obj, live = settle(disvc(replicas=case.before))
    want = desired.state(with_spec(obj, replicas=case.after), live, OPTIONS)
    assert [(r.kind, r.name) for r in want.plan.delete] == [("InferenceService", n) for n in case.deleted]
    assert [(o["kind"], o["metadata"]["name"]) for o in want.plan.create] == [("InferenceService", n) for n in case.created]
    assert want.plan.update == ()
    assert want.status["activeGeneration"] == "v1"
    obj, live = settle(with_spec(obj, replicas=case.after), live)
    assert named(live, "InferenceService") == [f"model-v1-{i}" for i in range(case.after)]
    assert obj["status"]["replicas"] == case.after


# --- Rolling update ----------------------------------------------------------------------


@dataclass(frozen=True)
class SupersedeCase:
    id: str
    ready_v2: set[str]
    """v2 ISVCs Ready when the further change arrives."""
    forget_status: bool = False
    spec: dict[str, Any] | None = None


@pytest.mark.parametrize(
    "case",
    [
        SupersedeCase("nothing-ready", set()),
        SupersedeCase("partly-ready", {"model-v2-0"}),
        SupersedeCase("partly-ready-status-lost", {"model-v2-0"}, forget_status=True),
        SupersedeCase("nothing-ready-status-lost", set(), forget_status=True),
        SupersedeCase("no-ingress", {"model-v2-1"}, spec={"ingress": {"enabled": False}}),
    ],
    ids=lambda c: c.id,
)
def test_further_change_supersedes_the_unfinished_generation_and_serving_stays(case: SupersedeCase) -> None:
    obj, live = _rollout_started(spec=case.spec)
    live = set_ready(live, case.ready_v2)
    if case.forget_status:
        obj = _without_status(obj)
    changed = with_spec(obj, annotations={"version": "v3"})
    obj, live, want = reconcile(changed, live)
    assert named(want.plan.create) == ["model-v3-0", "model-v3-1", "model-v3"]
    assert [r.name for r in want.plan.delete] == ["model-v2-1", "model-v2-0", "model-v2"]
    assert want.plan.update == ()
    assert {"model-v1-0", "model-v1-1", "model-v1"} <= set(named(live))
    assert obj["status"]["activeGeneration"] == "v1"
    assert obj["status"]["address"] == {"url": "http://model-v1.ns.svc.cluster.local"}
    if case.spec is None:
        assert _backend(live) == "model-v1"
    # and the superseding generation completes the rollout as usual
    obj, live = settle(obj, live)
    assert sorted(named(live, "InferenceService")) == ["model-v3-0", "model-v3-1"]
    assert obj["status"]["activeGeneration"] == "v3"


@dataclass(frozen=True)
class RolloutCase:
    id: str
    start: Callable[[], World]
    steps: list[Callable[[World], World]]
    """Applied in turn before each reconcile (readiness changes, lost status, ...)."""


def _ready(*isvcs: str) -> Callable[[World], World]:
    return lambda w: (w[0], set_ready(w[1], set(isvcs)))


def _unready(*isvcs: str) -> Callable[[World], World]:
    return lambda w: (w[0], set_ready(w[1], set(isvcs), ready=False))


def _lose_status(w: World) -> World:
    return _without_status(w[0]), w[1]


def _scale(replicas: int) -> Callable[[World], World]:
    return lambda w: (with_spec(w[0], replicas=replicas), w[1])


ROLLOUTS = [
    RolloutCase("one-by-one", _rollout_started, [_ready("model-v2-0"), _ready("model-v2-1")]),
    RolloutCase(
        "status-lost-with-successor-partly-ready",
        _rollout_started,
        [_ready("model-v2-0"), _lose_status, _ready("model-v2-1")],
    ),
    RolloutCase(
        "successor-flaps",
        _rollout_started,
        [_ready("model-v2-0", "model-v2-1"), _unready("model-v2-0"), _ready("model-v2-0")],
    ),
    RolloutCase(
        "serving-generation-unhealthy",
        _rollout_started,
        [_unready("model-v1-0", "model-v1-1"), _ready("model-v2-0"), _ready("model-v2-1")],
    ),
    RolloutCase(
        "scale-up-during-rollout",
        _rollout_started,
        [_ready("model-v2-0", "model-v2-1"), _scale(3), _ready("model-v2-2")],
    ),
    RolloutCase("rest-to-grpc", lambda: _rollout_started(template=H2C), [_ready("model-v2-0"), _ready("model-v2-1")]),
    RolloutCase(
        "grpc-to-rest",
        lambda: _rollout_started(template=SKLEARN, spec={"inferenceService": GRPC_NAMED}),
        [_ready("model-v2-0"), _ready("model-v2-1")],
    ),
    RolloutCase(
        "no-ingress",
        lambda: _rollout_started(spec={"ingress": {"enabled": False}}),
        [_ready("model-v2-0"), _lose_status, _ready("model-v2-1")],
    ),
]


def _complete(live: list[Obj], generation: str, replicas: int) -> bool:
    wanted = {f"model-{generation}-{i}" for i in range(replicas)}
    ready = {o["metadata"]["name"] for o in live if o["kind"] == "InferenceService" and is_ready(o)}
    return wanted <= ready


def _routed_port(live: list[Obj], name: str) -> dict[str, Any]:
    (port,) = find(live, "Service", name)["spec"]["ports"]
    return dict(port)


@pytest.mark.parametrize("case", ROLLOUTS, ids=lambda c: c.id)
def test_serving_generation_is_never_removed_before_its_successor_is_ready(case: RolloutCase) -> None:
    world = case.start()
    switched = False
    for step in [*case.steps, lambda w: w]:
        obj, live = step(world)
        replicas = obj["spec"].get("replicas", 1)
        want = desired.state(obj, live, OPTIONS)
        v1_deleted = [r.name for r in want.plan.delete if r.name.startswith("model-v1")]
        if v1_deleted:
            assert _complete(live, "v2", replicas), f"v1 deleted with v2 incomplete: {v1_deleted}"
        world_obj, world_live, _ = reconcile(obj, live)
        world = (world_obj, world_live)
        served = world_obj["status"]["activeGeneration"]
        switched = switched or served == "v2"
        if not switched:
            assert served == "v1"
            assert {"model-v1-0", "model-v1-1", "model-v1"} <= set(named(world_live))
        if world_obj["status"]["readyReplicas"]:
            assert world_obj["status"]["address"]["url"] == f"http://model-{served}.ns.svc.cluster.local"
        else:
            assert "address" not in world_obj["status"]
        if named(world_live, "Ingress"):
            # the Ingress and the top-level Service reach the serving generation
            # the way its own Service does, even when the rollout changes protocol
            assert _backend(world_live) == f"model-{served}"
            generation_port = _routed_port(world_live, f"model-{served}")
            assert _routed_port(world_live, "model") == generation_port
            backend = find(world_live, "Ingress", "model")["metadata"].get("annotations", {})
            assert (backend.get(names.GRPC_BACKEND_ANNOTATION) == "GRPC") == (generation_port["name"] == "grpc")
    assert switched
    obj, live = settle(*world)
    assert not [n for n in named(live) if n.startswith("model-v1")]


def test_protocol_changing_rollout_switches_ingress_and_top_service_with_traffic() -> None:
    obj, live = _rollout_started(template=H2C)
    ingress = find(live, "Ingress", "model")
    assert names.GRPC_BACKEND_ANNOTATION not in ingress["metadata"].get("annotations", {})
    assert _routed_port(live, "model")["targetPort"] == 8080
    assert _routed_port(live, "model-v2")["targetPort"] == 9000
    obj, live, switched = reconcile(obj, set_ready(live))
    assert sorted((o["kind"], o["metadata"]["name"]) for o in switched.plan.update) == [
        ("Ingress", "model"),
        ("Service", "model"),
    ]
    assert find(live, "Ingress", "model")["metadata"]["annotations"][names.GRPC_BACKEND_ANNOTATION] == "GRPC"
    assert _routed_port(live, "model")["targetPort"] == 9000


# --- Safety: an invalid spec never deletes serving children --------------------------


@dataclass(frozen=True)
class InvalidWorldCase:
    id: str
    world: Callable[[], World]
    serving: str
    break_it: dict[str, Any] = field(default_factory=lambda: {"replicas": -1})


def _partly_rolled_out(forget_status: bool = False) -> World:
    obj, live = _rollout_started()
    return (_without_status(obj) if forget_status else obj), set_ready(live, {"model-v2-0"})


@pytest.mark.parametrize(
    "case",
    [
        InvalidWorldCase("steady", lambda: settle(disvc(replicas=2)), "v1"),
        InvalidWorldCase("mid-rollout", _rollout_started, "v1"),
        InvalidWorldCase("mid-rollout-partly-ready", lambda: _partly_rolled_out(), "v1"),
        InvalidWorldCase("mid-rollout-status-lost", lambda: _partly_rolled_out(forget_status=True), "v1"),
        InvalidWorldCase("both-spellings", _rollout_started, "v1", {"inferenservice": SKLEARN}),
        InvalidWorldCase("bad-ingress", lambda: settle(disvc(replicas=2)), "v1", {"ingress": {"tls": "s"}}),
    ],
    ids=lambda c: c.id,
)
def test_invalid_spec_never_deletes_or_rewrites_children(case: InvalidWorldCase) -> None:
    obj, live = case.world()
    broken = with_spec(obj, **case.break_it)
    want = desired.state(broken, live, T1)
    assert want.plan.is_empty
    assert want.status["activeGeneration"] == case.serving
    assert want.status["observedGeneration"] == broken["metadata"]["generation"]
    ready = condition(want.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert [(e.type, e.reason) for e in want.events] == [("Warning", "InvalidSpec")]


# --- Safety: never crash --------------------------------------------------------------


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["replicas", "inferenceService", "inferenservice", "annotations", "ingress"])
INGRESS = st.fixed_dictionaries(
    {},
    optional={
        "enabled": JSON,
        "host": JSON,
        "className": JSON,
        "tls": JSON | st.fixed_dictionaries({"secretName": JSON}),
        "annotations": JSON,
    },
)
TEMPLATE = st.fixed_dictionaries(
    {"predictor": JSON | st.fixed_dictionaries({"model": st.fixed_dictionaries({}, optional={"args": JSON, "ports": JSON})})}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.dictionaries(FIELDS, JSON, max_size=5),
    ingress=st.none() | INGRESS,
    template=st.none() | TEMPLATE,
)
def test_any_spec_never_raises_and_never_deletes_when_invalid(
    spec: dict[str, Any], ingress: dict[str, Any] | None, template: dict[str, Any] | None
) -> None:
    obj, live = SETTLED
    body = dict(spec)
    if ingress is not None:
        body["ingress"] = ingress
    if template is not None:
        body["inferenceService"] = template
    changed = copy.deepcopy(obj)
    changed["spec"] = body
    frozen = copy.deepcopy(changed)
    want = desired.state(changed, live, OPTIONS)
    assert changed == frozen
    if condition(want.status, "Ready")["reason"] == "InvalidSpec":
        assert want.plan.is_empty
    elif want.plan.delete:
        # a valid change may only remove serving children once replaced
        assert all(r.name.startswith("model-v1-") or r.kind == "Ingress" for r in want.plan.delete)


SETTLED = settle(disvc(replicas=2))


# --- Safety: name clashes with foreign objects ------------------------------------------


@dataclass(frozen=True)
class ClashCase:
    id: str
    kind: str
    name: str
    rollout: bool = False


def _foreign(kind: str, name: str) -> Obj:
    api = {"Service": "v1", "Ingress": "networking.k8s.io/v1", "InferenceService": "serving.kserve.io/v1beta1"}[kind]
    body = {"Service": {"selector": {"app": "x"}}, "Ingress": {"rules": []}, "InferenceService": {"predictor": {}}}[kind]
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "uid": "foreign", "resourceVersion": "9"},
        "spec": body,
    }


@pytest.mark.parametrize(
    "case",
    [
        ClashCase("ingress", "Ingress", "model"),
        ClashCase("isvc", "InferenceService", "model-v1-0"),
        ClashCase("top-service", "Service", "model"),
        ClashCase("next-generation-service", "Service", "model-v2", rollout=True),
        ClashCase("next-generation-isvc", "InferenceService", "model-v2-1", rollout=True),
    ],
    ids=lambda c: c.id,
)
def test_foreign_name_clash_is_left_alone_and_reported(case: ClashCase) -> None:
    foreign = _foreign(case.kind, case.name)
    if case.rollout:
        obj, live = settle(disvc(replicas=2, annotations={"version": "v1"}))
        obj = with_spec(obj, annotations={"version": "v2"})
    else:
        obj, live = disvc(replicas=2), []
    live = [*live, foreign]
    for _ in range(3):  # however often it reconciles, with everything of ours Ready
        want = desired.state(obj, live, OPTIONS)
        written = [(o["kind"], o["metadata"]["name"]) for o in (*want.plan.create, *want.plan.update)]
        assert (case.kind, case.name) not in written
        assert all(r.uid != "foreign" for r in want.plan.delete)
        assert [o["metadata"]["uid"] for o in want.plan.conflicts] == ["foreign"]
        ready = condition(want.status, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "ChildConflict")
        assert f"{case.kind} {case.name}" in ready["message"]
        obj, live, _ = reconcile(obj, set_ready(live), ready=lambda n: True)
        (kept,) = [o for o in live if o["metadata"].get("uid") == "foreign"]
        assert (kept["metadata"], kept["spec"]) == (foreign["metadata"], foreign["spec"])
    if case.rollout:
        # the clashing generation never takes traffic; the serving one stays
        assert obj["status"]["activeGeneration"] == "v1"
        assert _backend(live) == "model-v1"
        assert {"model-v1-0", "model-v1-1", "model-v1"} <= set(named(live))


def test_no_url_is_reported_while_a_foreign_ingress_holds_the_name() -> None:
    obj, live = settle(disvc(replicas=1))
    ours = next(o for o in live if o["kind"] == "Ingress")
    live = [o for o in live if o is not ours] + [_foreign("Ingress", "model")]

    want = desired.state(obj, set_ready(live), OPTIONS)

    assert "url" not in want.status
    assert want.status["address"]["url"] == "http://model-v1.ns.svc.cluster.local"
