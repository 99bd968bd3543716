"""Automated canary analysis (``builders.analysis``) driven through ``desired.state``.

Each test runs reconciles the way the controller does (build; when queries
are due, measure them with a scripted answer and build again; apply the
plan; write the status) on a simulated clock, and checks what a user sees:
the canary's weight in the Ingresses, ``status.analysis``, ``Progressing``
and the Events.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from disvc_world import condition, disvc, named, reconcile, set_ready, settle

from disvc.builders import analysis, desired, spec
from disvc.builders.analysis import Measured, Query, Sample
from disvc.builders.desired import BuildOptions
from disvc.builders.types import Obj

START = datetime(2024, 1, 1, tzinfo=UTC)
V2 = {"version": "v2"}

ANALYSIS: dict[str, Any] = {
    "steps": [10, 30, 60],
    "interval": "30s",
    "failureLimit": 1,
    "metrics": [
        {
            "name": "error-rate",
            "query": 'sum(rate(errors{service="{{ service }}",ns="{{ namespace }}"}[{{ interval }}]))',
            "max": 0.05,
        },
        {"name": "p99", "query": 'p99{generation="{{ generation }}",disvc="{{ name }}"}', "max": 0.5},
    ],
}

Script = Callable[[Query], Sample]


def at(seconds: float) -> BuildOptions:
    return BuildOptions(now=(START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"))


def value(number: float) -> Script:
    return lambda query: Sample(query.metric, value=number, text=f"{number:g}")


def by_metric(**values: float) -> Script:
    return lambda query: Sample(query.metric, value=values[query.metric.replace("-", "_")], text="x")


def no_data(query: Query) -> Sample:
    return Sample(query.metric)


def unreachable(query: Query) -> Sample:
    return Sample(query.metric, error="Prometheus at http://p:9090 unreachable: refused")


def unparseable(query: Query) -> Sample:
    return Sample(query.metric, error="Prometheus refused the query (bad_data): 1:7: parse error", invalid=True)


@dataclass
class World:
    obj: Obj
    live: list[Obj]
    measured: list[tuple[float, tuple[Query, ...]]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    writes: int = 0

    def step(self, seconds: float, script: Script | None = None) -> desired.Desired:
        """One reconcile at ``seconds`` after START; ``script`` answers due queries."""
        options = at(seconds)
        first = desired.state(self.obj, self.live, options)
        if first.queries:
            assert script is not None, f"a measurement is due at {seconds}s"
            self.measured.append((seconds, first.queries))
            options = replace(options, measured=Measured(tuple(script(q) for q in first.queries)))
        before = self.obj.get("status")
        self.obj, live, want = reconcile(self.obj, self.live, options, ready=lambda name: True)
        self.live = set_ready(live)
        self.events.extend((e.type, e.reason, e.message) for e in want.events)
        if not want.plan.is_empty or want.status != before:
            self.writes += 1
        return want

    @property
    def analysis(self) -> dict[str, Any]:
        return dict(self.obj["status"].get("analysis") or {})

    def canary_weight(self) -> int | None:
        for obj in self.live:
            if obj["kind"] == "Ingress" and obj["metadata"]["name"].endswith("-canary"):
                return int(obj["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"])
        return None

    def progressing(self) -> dict[str, Any]:
        return condition(self.obj["status"], "Progressing")


def canary_world(rollout: dict[str, Any] | None = None) -> World:
    """v1 serving; then a template change with a canary under analysis, the
    canary created and Ready at 0s (step 1 begins)."""
    plan = {"canaryTrafficPercent": 10, "analysis": copy.deepcopy(ANALYSIS), **(rollout or {})}
    obj, live = settle(disvc(replicas=2, spec={"rollout": plan}, scale_down_delay=0), options=at(-100))
    changed = copy.deepcopy(obj)
    changed["spec"]["annotations"] = V2
    changed["metadata"]["generation"] += 1
    world = World(changed, live)
    world.step(-10)  # the canary's ISVCs are created; they turn Ready
    world.step(0)  # the canary is whole: step 1 starts
    return world


def test_a_good_canary_walks_every_step_and_is_promoted() -> None:
    world = canary_world()
    assert world.canary_weight() == 10
    assert world.analysis | {"phase": "Running", "step": 1, "weight": 10, "generation": "v2"} == world.analysis
    assert world.progressing()["reason"] == "AnalysisRunning"

    writes = world.writes
    for second in (1, 10, 29):  # not due yet: no measurement, nothing written
        want = world.step(second)
        assert not want.queries and want.recheck_after == pytest.approx(30 - second)
    assert world.writes == writes and world.measured == []

    world.step(30, value(0.01))
    assert (world.analysis["step"], world.canary_weight()) == (2, 30)
    world.step(60, value(0.01))
    assert (world.analysis["step"], world.canary_weight()) == (3, 60)
    world.step(90, value(0.01))
    assert world.obj["status"]["activeGeneration"] == "v2"
    assert world.canary_weight() is None
    assert world.analysis["phase"] == "Successful"
    assert [t for t, _ in world.measured] == [30, 60, 90]
    assert [e[1] for e in world.events if e[1].startswith("Analysis")] == [
        "AnalysisStep", "AnalysisStep", "AnalysisStep", "AnalysisSuccessful",
    ]  # fmt: skip
    world.step(200)
    assert world.progressing()["reason"] == "Converged"
    assert named(world.live, "InferenceService") == ["model-v2-0", "model-v2-1"]


def test_queries_have_their_placeholders_filled_in() -> None:
    world = canary_world()
    world.step(30, value(0.0))
    ((_, queries),) = world.measured
    assert [q.promql for q in queries] == [
        'sum(rate(errors{service="model-v2",ns="ns"}[30s]))',
        'p99{generation="v2",disvc="model"}',
    ]


def test_failures_beyond_the_limit_abort_and_free_the_canary() -> None:
    world = canary_world()  # failureLimit 1
    world.step(30, by_metric(error_rate=0.2, p99=0.1))
    assert world.analysis | {"failures": 1, "step": 1, "phase": "Running"} == world.analysis
    assert world.canary_weight() == 10
    world.step(60, by_metric(error_rate=0.3, p99=0.1))
    progressing = world.progressing()
    assert (progressing["status"], progressing["reason"]) == ("False", "AnalysisFailed")
    assert "error-rate = x is outside max 0.05" in progressing["message"]
    assert world.canary_weight() is None
    assert named(world.live, "InferenceService") == ["model-v1-0", "model-v1-1"]
    assert world.obj["status"]["activeGeneration"] == "v1"
    assert ("Warning", "AnalysisFailed", progressing["message"]) in world.events

    writes = world.writes
    for second in (61, 200, 5000):  # stays aborted; nothing more written or measured
        want = world.step(second)
        assert want.plan.is_empty and not want.queries
    assert world.writes == writes and len(world.measured) == 2


def test_an_aborted_canary_waits_out_the_scale_down_delay_without_traffic() -> None:
    world = canary_world({"analysis": {**ANALYSIS, "failureLimit": 0}, "scaleDownDelaySeconds": 10})
    want = world.step(30, value(1.0))
    assert world.canary_weight() is None  # traffic back on v1 at once
    assert "model-v2-0" in named(world.live, "InferenceService") and "model-v2" in named(world.live, "Service")
    assert want.recheck_after == pytest.approx(10)
    assert "are deleted at 2024-01-01T00:00:40Z, 10s later" in world.progressing()["message"]
    writes = world.writes
    want = world.step(35)
    assert want.plan.is_empty and want.recheck_after == pytest.approx(5) and world.writes == writes
    world.step(40)
    assert named(world.live, "InferenceService") == ["model-v1-0", "model-v1-1"]
    assert "model-v2" not in named(world.live, "Service")
    assert world.progressing()["reason"] == "AnalysisFailed"


def test_a_retry_starts_the_aborted_analysis_over() -> None:
    world = canary_world({"analysis": {**ANALYSIS, "failureLimit": 0}})
    world.step(30, value(1.0))
    assert world.progressing()["reason"] == "AnalysisFailed"
    world.obj["metadata"]["annotations"] = {spec.RETRY_ANNOTATION: "1"}
    world.step(100)
    assert "model-v2-0" in named(world.live, "InferenceService")
    world.step(101)
    assert world.analysis | {"phase": "Running", "step": 1, "retry": "1"} == world.analysis
    assert world.canary_weight() == 10


def test_a_new_template_after_an_abort_is_a_new_canary() -> None:
    world = canary_world({"analysis": {**ANALYSIS, "failureLimit": 0}})
    world.step(30, value(1.0))
    world.obj["spec"]["annotations"] = {"version": "v3"}
    world.step(40)
    world.step(41)
    assert world.analysis["phase"] == "Running" and world.canary_weight() == 10


def test_no_data_is_inconclusive_never_a_pass() -> None:
    world = canary_world()
    for second in (30, 60, 90):
        world.step(second, no_data)
    assert world.analysis | {"step": 1, "failures": 0, "phase": "Running"} == world.analysis
    assert {m["verdict"] for m in world.analysis["measurements"]} == {"Inconclusive"}
    assert world.canary_weight() == 10


def test_prometheus_errors_in_a_row_pause_the_walk_until_it_answers() -> None:
    world = canary_world()
    world.step(30, unreachable)
    world.step(60, unreachable)
    assert world.progressing()["reason"] == "AnalysisRunning"
    world.step(90, unreachable)
    progressing = world.progressing()
    assert progressing["reason"] == "AnalysisPaused" and "unreachable" in progressing["message"]
    assert world.canary_weight() == 10 and world.analysis["step"] == 1
    assert [e[1] for e in world.events].count("AnalysisPaused") == 1
    world.step(120, unreachable)
    assert [e[1] for e in world.events].count("AnalysisPaused") == 1
    world.step(150, value(0.0))
    assert world.progressing()["reason"] == "AnalysisRunning"
    assert (world.analysis["step"], world.analysis["errors"]) == (2, 0)


def test_an_unparseable_query_pauses_at_once_with_prometheus_words() -> None:
    world = canary_world()
    world.step(30, unparseable)
    message = world.progressing()["message"]
    assert world.progressing()["reason"] == "AnalysisPaused"
    assert "bad_data): 1:7: parse error" in message


def test_a_restart_resumes_at_the_same_step_from_the_status() -> None:
    world = canary_world()
    world.step(30, value(0.0))
    # a new controller: nothing but the DISVC (with its status) and the live children
    restarted = World(copy.deepcopy(world.obj), copy.deepcopy(world.live))
    want = restarted.step(45)
    assert want.plan.is_empty and want.status == world.obj["status"]
    assert want.recheck_after == pytest.approx(15)
    restarted.step(60, value(0.0))
    assert restarted.analysis["step"] == 3


def test_analysis_status_is_the_only_change_while_a_step_is_measured() -> None:
    world = canary_world()
    world.step(30, by_metric(error_rate=0.2, p99=0.1))
    measurements = world.analysis["measurements"]
    assert measurements[0] | {"metric": "error-rate", "verdict": "Fail", "bound": "max 0.05"} == measurements[0]
    assert measurements[1]["verdict"] == "Pass"


@pytest.mark.parametrize(
    ("rollout", "field", "words"),
    [
        ({"analysis": ANALYSIS}, "spec.rollout.analysis", "needs a canary"),
        ({"canaryTrafficPercent": 5, "analysis": {**ANALYSIS, "steps": [30, 10]}}, "spec.rollout.analysis.steps", "increasing"),
        ({"canaryTrafficPercent": 5, "analysis": {**ANALYSIS, "steps": [10, 100]}}, "spec.rollout.analysis.steps", "1 to 99"),
        ({"canaryTrafficPercent": 5, "analysis": {**ANALYSIS, "interval": "soon"}}, "spec.rollout.analysis.interval", "duration"),
        ({"canaryTrafficPercent": 5, "analysis": {**ANALYSIS, "metrics": [{"name": "a", "query": "up"}]}},
         "spec.rollout.analysis.metrics[0]", "needs a bound"),
        ({"canaryTrafficPercent": 5, "analysis": {**ANALYSIS, "metrics": [{"name": "a", "query": "{{ pod }}", "max": 1}]}},
         "spec.rollout.analysis.metrics[0].query", "unknown placeholder {{ pod }}"),
    ],
    ids=["without-canary", "decreasing", "hundred", "interval", "no-bound", "placeholder"],
)  # fmt: skip
def test_invalid_analysis_is_named(rollout: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(spec.InvalidSpec) as raised:
        spec.parse(disvc(spec={"rollout": rollout}))
    assert raised.value.field == field and words in raised.value.reason


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (Sample("m", value=0.5, text="0.5"), "Pass"),
        (Sample("m", value=0.51, text="0.51"), "Fail"),
        (Sample("m", value=0.09, text="0.09"), "Fail"),
        (Sample("m"), "Inconclusive"),
        (Sample("m", value=float("nan"), text="NaN"), "Inconclusive"),
        (Sample("m", error="down"), "Error"),
    ],
)
def test_verdicts(sample: Sample, expected: str) -> None:
    assert analysis.verdict(Query("m", "q", max=0.5, min=0.1), sample) == expected
