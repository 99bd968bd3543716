"""Automated canary analysis: the weights a canary walks, and when it passes or fails.

A canary with ``spec.rollout.analysis`` takes ``steps[0]`` percent of external
requests once it is Ready; every ``interval`` each metric's PromQL query is
measured against its bounds. A measurement in which every metric passes ends
the step (a step therefore lasts at least one interval): the next weight, or,
after the last step, the blue/green switch. More failed measurements than
``failureLimit`` within one step abort: traffic goes back to the serving
generation at once and the canary's ISVCs are deleted once the scale-down
delay has passed (timed from the failed measurement, as ``scaledown`` times
a switch, so a late router never meets a Service without endpoints); it
stays so until the
template changes or the user retries (``spec.RETRY_ANNOTATION``). A query
with no data (or NaN) is inconclusive: neither pass nor fail, measured again.
Prometheus unreachable or answering errors ``ERROR_LIMIT`` times in a row (or
refusing a query it cannot parse, at once) pauses the walk, which resumes
when it answers again.

Pure and restart-safe: the walk is recorded in ``status.analysis`` (which
generation and template it is about, the step, when it started, when the
last measurement was taken, failures and errors so far), so a restarted
controller resumes at the same step and measures when it would have. The
measuring itself is I/O and happens in the controller: ``progress`` names
the ``queries`` due now; the reconciler measures them and asks again with
``Measured``. The status changes only when a measurement is taken or the
step moves. Argo Rollouts' ``AnalysisRun`` (phases Running, Successful,
Failed, Error, Inconclusive) is the model.

Neighbours: ``desired`` calls ``progress`` and hands its ``CanaryGate`` to
the canary strategy (``strategies.canary``); ``conditions`` lists the
reasons used here; ``spec`` parses the analysis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal, TypeAlias

from disvc.builders import deadline, names
from disvc.builders.conditions import Condition
from disvc.builders.spec import PLACEHOLDER, AnalysisSpec, DisvcSpec, MetricSpec
from disvc.builders.strategies.base import CanaryGate
from disvc.builders.types import EventSpec, Obj

Verdict: TypeAlias = Literal["Pass", "Fail", "Inconclusive", "Error"]
Phase: TypeAlias = Literal["Waiting", "Running", "Paused", "Failed", "Successful"]

ERROR_LIMIT: Final = 3
"""Measurements in a row that Prometheus could not answer before the walk pauses."""


@dataclass(frozen=True, slots=True)
class Query:
    """One metric to measure now: its query with the placeholders filled in."""

    metric: str
    promql: str
    max: float | None = None
    min: float | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """What Prometheus answered for one ``Query``."""

    metric: str
    value: float | None = None
    """The single value; None when the query returned no data."""
    text: str | None = None
    """The value as Prometheus wrote it (kept in the status as is)."""
    error: str | None = None
    """Why there is no answer (unreachable, an error response); None when answered."""
    invalid: bool = False
    """Prometheus refused the query itself (it cannot parse it): no retry will help."""


@dataclass(frozen=True, slots=True)
class Measured:
    """Every due query's sample, taken at the reconcile's ``now``."""

    samples: tuple[Sample, ...]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a canary under analysis stands after this reconcile."""

    gate: CanaryGate
    entry: Obj
    """``status.analysis``."""
    condition: Condition | None = None
    """Replaces ``Progressing`` (None: the usual one, e.g. while the canary starts)."""
    events: tuple[EventSpec, ...] = ()
    queries: tuple[Query, ...] = ()
    """Due now and not measured yet: measure them and build again with ``Measured``."""
    recheck_after: float | None = None
    """Seconds until the next measurement is due."""


def render(query: str, spec: DisvcSpec, generation: int, interval: str) -> str:
    """``query`` with ``{{ namespace }}``, ``{{ name }}``, ``{{ generation }}``,
    ``{{ service }}`` and ``{{ interval }}`` filled in."""
    values = {
        "namespace": spec.namespace,
        "name": spec.name,
        "generation": names.generation_label(generation),
        "service": names.generation_name(spec.name, generation),
        "interval": interval,
    }
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), query)


def verdict(query: Query, sample: Sample) -> Verdict:
    """One metric's verdict: an error, no data (or NaN), out of bounds, or a pass."""
    if sample.error is not None:
        return "Error"
    if sample.value is None or math.isnan(sample.value):
        return "Inconclusive"
    if query.max is not None and sample.value > query.max:
        return "Fail"
    if query.min is not None and sample.value < query.min:
        return "Fail"
    return "Pass"


def bound_text(query: Query | MetricSpec) -> str:
    parts = []
    if query.min is not None:
        parts.append(f"min {_number(query.min)}")
    if query.max is not None:
        parts.append(f"max {_number(query.max)}")
    return ", ".join(parts)


def progress(
    spec: DisvcSpec,
    previous_status: Mapping[str, Any],
    serving: int | None,
    target: int,
    template_hash: str,
    canary_ready: bool,
    now: str,
    measured: Measured | None = None,
) -> Progress | None:
    """The analysis of the canary ``target`` beside ``serving`` at ``now``; None
    when no canary under analysis rolls out. ``canary_ready``: the canary is
    whole and Ready, so it takes traffic (only then do steps run)."""
    analysis = spec.rollout.analysis
    if analysis is None or not spec.rollout.is_canary or serving is None or serving == target:
        return None
    label = names.generation_label(target)
    entry = _current(previous_status, label, template_hash, analysis.retry)
    if entry is not None and entry.get("phase") == "Failed":
        left = _kept_for(entry, spec.rollout.scale_down_delay_seconds, now)
        return Progress(
            CanaryGate(0, aborted=True, keep_canary=left > 0),
            entry,
            _failed_condition(str(entry.get("message", ""))),
            recheck_after=left if left > 0 else None,
        )
    if entry is None or entry.get("phase") == "Waiting":
        if not canary_ready:
            waiting: Obj = {**_identity(label, template_hash, analysis), "phase": "Waiting"}
            return Progress(CanaryGate(analysis.steps[0]), waiting)
        started = _step_entry(_identity(label, template_hash, analysis), analysis, 1, now, errors=0, measurements=[])
        return Progress(
            CanaryGate(analysis.steps[0]),
            started,
            _running_condition(started, analysis),
            events=(
                EventSpec(
                    "Normal",
                    "AnalysisStep",
                    f"Canary {label} takes {analysis.steps[0]}% of external traffic: step 1 of "
                    f"{len(analysis.steps)}, measured every {analysis.interval}",
                ),
            ),
            recheck_after=analysis.interval_seconds,
        )
    return _running(spec, analysis, entry, target, canary_ready, now, measured)


def _running(
    spec: DisvcSpec,
    analysis: AnalysisSpec,
    entry: Obj,
    target: int,
    canary_ready: bool,
    now: str,
    measured: Measured | None,
) -> Progress:
    step = min(max(int(entry.get("step") or 1), 1), len(analysis.steps))
    gate = CanaryGate(analysis.steps[step - 1])
    condition = (
        _paused_condition(entry, analysis) if entry.get("phase") == "Paused" else _running_condition(entry, analysis)
    )
    due_in = _due_in(entry, analysis, now)
    if entry.get("phase") == "Successful":
        return Progress(CanaryGate(gate.weight, promote=True), entry, condition)
    if not canary_ready:
        # no canary traffic to measure: measured once it is whole again
        return Progress(gate, entry, condition)
    if due_in > 0:
        return Progress(gate, entry, condition, recheck_after=due_in)
    queries = tuple(
        Query(metric.name, render(metric.query, spec, target, analysis.interval), metric.max, metric.min)
        for metric in analysis.metrics
    )
    if measured is None:
        # whoever cannot measure (``disvc render``) comes back an interval later
        return Progress(gate, entry, condition, queries=queries, recheck_after=analysis.interval_seconds)
    return _judge(spec, analysis, entry, step, queries, measured, now)


def _judge(
    spec: DisvcSpec,
    analysis: AnalysisSpec,
    entry: Obj,
    step: int,
    queries: Sequence[Query],
    measured: Measured,
    now: str,
) -> Progress:
    label = str(entry.get("generation"))
    by_metric = {sample.metric: sample for sample in measured.samples}
    results = [
        (query, sample, verdict(query, sample))
        for query in queries
        for sample in (by_metric.get(query.metric) or Sample(query.metric, error="not measured"),)
    ]
    measurements = [_measurement(query, sample, result, now) for query, sample, result in results]
    failed = [(query, sample) for query, sample, result in results if result == "Fail"]
    errored = [(query, sample) for query, sample, result in results if result == "Error"]
    errors = 0
    if errored:
        errors = ERROR_LIMIT if any(s.invalid for _, s in errored) else int(entry.get("errors") or 0) + 1
    failures = int(entry.get("failures") or 0) + (1 if failed else 0)
    base: Obj = {
        **{key: entry[key] for key in ("generation", "templateHash", "retry", "steps") if key in entry},
        "phase": "Running",
        "step": step,
        "weight": analysis.steps[step - 1],
        "stepStartedAt": entry.get("stepStartedAt", now),
        "lastMeasuredAt": now,
        "failures": failures,
        "errors": errors,
        "measurements": measurements,
    }
    where = f"step {step} of {len(analysis.steps)} ({analysis.steps[step - 1]}%)"
    if failed and failures > analysis.failure_limit:
        query, sample = failed[0]
        message = (
            f"Analysis of canary {label} failed at {where}: {query.metric} = {_value(sample)} "
            f"is outside {bound_text(query)} ({failures} failed measurement"
            f"{'' if failures == 1 else 's'}, failureLimit {analysis.failure_limit}); traffic is back "
            f"on the serving generation and {label}'s ISVCs {_going(spec, now)}; change the template "
            f"or run kubectl disvc retry {spec.name}"
        )
        aborted: Obj = {**base, "phase": "Failed", "message": message}
        delay = float(spec.rollout.scale_down_delay_seconds)
        return Progress(
            CanaryGate(0, aborted=True, keep_canary=delay > 0),
            aborted,
            _failed_condition(message),
            events=(EventSpec("Warning", "AnalysisFailed", message),),
            recheck_after=delay if delay > 0 else None,
        )
    if errors >= ERROR_LIMIT:
        paused: Obj = {**base, "phase": "Paused"}
        events: tuple[EventSpec, ...] = ()
        if entry.get("phase") != "Paused":
            events = (EventSpec("Warning", "AnalysisPaused", _paused_condition(paused, analysis).message),)
        return Progress(
            CanaryGate(analysis.steps[step - 1]),
            paused,
            _paused_condition(paused, analysis),
            events=events,
            recheck_after=analysis.interval_seconds,
        )
    if not failed and not errored and all(result == "Pass" for _, _, result in results):
        if step == len(analysis.steps):
            done: Obj = {**base, "phase": "Successful"}
            return Progress(
                CanaryGate(analysis.steps[-1], promote=True),
                done,
                _running_condition(done, analysis),
                events=(
                    EventSpec(
                        "Normal",
                        "AnalysisSuccessful",
                        f"Canary {label} passed all {len(analysis.steps)} steps: promoting it",
                    ),
                ),
            )
        nxt = _step_entry(base, analysis, step + 1, now, errors=0, measurements=measurements)
        return Progress(
            CanaryGate(analysis.steps[step]),
            nxt,
            _running_condition(nxt, analysis),
            events=(
                EventSpec(
                    "Normal",
                    "AnalysisStep",
                    f"Canary {label} passed step {step} ({analysis.steps[step - 1]}%): now takes "
                    f"{analysis.steps[step]}% (step {step + 1} of {len(analysis.steps)})",
                ),
            ),
            recheck_after=analysis.interval_seconds,
        )
    return Progress(
        CanaryGate(analysis.steps[step - 1]),
        base,
        _running_condition(base, analysis),
        recheck_after=analysis.interval_seconds,
    )


def _kept_for(entry: Mapping[str, Any], delay_seconds: int, now: str) -> float:
    """Seconds the aborted canary's ISVCs stay (0: they go now): the
    scale-down delay, timed from the measurement that failed it."""
    failed_at = deadline.parse_time(entry.get("lastMeasuredAt"))
    current = deadline.parse_time(now)
    if delay_seconds <= 0 or failed_at is None or current is None:
        return 0.0
    return min(float(delay_seconds), (failed_at + timedelta(seconds=delay_seconds) - current).total_seconds())


def _going(spec: DisvcSpec, now: str) -> str:
    delay = spec.rollout.scale_down_delay_seconds
    current = deadline.parse_time(now)
    if delay <= 0 or current is None:
        return "are deleted"
    until = (current + timedelta(seconds=delay)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"are deleted at {until}, {delay}s later (spec.rollout.scaleDownDelaySeconds), taking no traffic meanwhile"


def _identity(label: str, template_hash: str, analysis: AnalysisSpec) -> Obj:
    entry: Obj = {"generation": label, "templateHash": template_hash}
    if analysis.retry:
        entry["retry"] = analysis.retry
    entry["steps"] = len(analysis.steps)
    return entry


def _step_entry(
    base: Mapping[str, Any],
    analysis: AnalysisSpec,
    step: int,
    now: str,
    errors: int,
    measurements: list[Obj],
) -> Obj:
    entry: Obj = {
        **{key: base[key] for key in ("generation", "templateHash", "retry", "steps") if key in base},
        "phase": "Running",
        "step": step,
        "weight": analysis.steps[step - 1],
        "stepStartedAt": now,
        "failures": 0,
        "errors": errors,
    }
    if measurements:
        entry["lastMeasuredAt"] = now
        entry["measurements"] = measurements
    return entry


def _current(previous_status: Mapping[str, Any], label: str, template_hash: str, retry: str) -> Obj | None:
    """``status.analysis`` when it is about this canary: same generation, same
    template, and no retry asked for since."""
    entry = previous_status.get("analysis")
    if not isinstance(entry, Mapping):
        return None
    if (
        entry.get("generation") != label
        or entry.get("templateHash") != template_hash
        or (entry.get("retry") or "") != retry
    ):
        return None
    return dict(entry)


def _due_in(entry: Mapping[str, Any], analysis: AnalysisSpec, now: str) -> float:
    """Seconds until the next measurement (0 or less: due now)."""
    last = deadline.parse_time(entry.get("lastMeasuredAt")) or deadline.parse_time(entry.get("stepStartedAt"))
    current = deadline.parse_time(now)
    if last is None or current is None:
        return 0.0
    return (last + timedelta(seconds=analysis.interval_seconds) - current).total_seconds()


def next_measurement(entry: Mapping[str, Any], analysis: AnalysisSpec) -> str:
    last = deadline.parse_time(entry.get("lastMeasuredAt")) or deadline.parse_time(entry.get("stepStartedAt"))
    if last is None:
        return "now"
    return (last + timedelta(seconds=analysis.interval_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _measurement(query: Query, sample: Sample, result: Verdict, now: str) -> Obj:
    entry: Obj = {"metric": query.metric, "verdict": result, "bound": bound_text(query), "measuredAt": now}
    if sample.text is not None:
        entry["value"] = sample.text
    if sample.error is not None:
        entry["error"] = sample.error
    return entry


def _last(entry: Mapping[str, Any]) -> str:
    measurements = entry.get("measurements")
    if not isinstance(measurements, list) or not measurements:
        return ""
    shown = "; ".join(
        f"{m.get('metric')} {m.get('value', m.get('error', 'no data'))} ({m.get('bound')}) {m.get('verdict')}"
        for m in measurements
        if isinstance(m, Mapping)
    )
    return f"; last measurement: {shown}"


def _running_condition(entry: Mapping[str, Any], analysis: AnalysisSpec) -> Condition:
    label = entry.get("generation")
    step = int(entry.get("step") or 1)
    if entry.get("phase") == "Successful":
        return Condition(
            "Progressing",
            True,
            "AnalysisRunning",
            f"Canary {label} passed all {len(analysis.steps)} steps of its analysis: promoting it" + _last(entry),
        )
    failures = int(entry.get("failures") or 0)
    return Condition(
        "Progressing",
        True,
        "AnalysisRunning",
        f"Canary {label} takes {analysis.steps[step - 1]}% of external traffic: step {step} of "
        f"{len(analysis.steps)} of its analysis, {failures} failed measurement"
        f"{'' if failures == 1 else 's'} (failureLimit {analysis.failure_limit}); next measurement at "
        f"{next_measurement(entry, analysis)}" + _last(entry),
    )


def _paused_condition(entry: Mapping[str, Any], analysis: AnalysisSpec) -> Condition:
    label = entry.get("generation")
    step = int(entry.get("step") or 1)
    errors = [
        f"{m.get('metric')}: {m.get('error')}"
        for m in entry.get("measurements") or ()
        if isinstance(m, Mapping) and m.get("error")
    ]
    return Condition(
        "Progressing",
        True,
        "AnalysisPaused",
        f"Analysis paused: Prometheus could not answer ({'; '.join(errors) or 'no answer'}); canary "
        f"{label} holds {analysis.steps[step - 1]}% at step {step} of {len(analysis.steps)}, neither "
        f"promoted nor aborted, and is measured again at {next_measurement(entry, analysis)}",
    )


def _failed_condition(message: str) -> Condition:
    return Condition("Progressing", False, "AnalysisFailed", message)


def _number(value: float) -> str:
    return f"{value:g}"


def _value(sample: Sample) -> str:
    if sample.text is not None:
        return sample.text
    return _number(sample.value) if sample.value is not None else "no data"
