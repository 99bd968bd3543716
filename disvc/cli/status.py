"""``kubectl disvc status N``: one screen that says where a DISVC's rollout stands.

Built from the DISVC and its InferenceServices as read, and the time, by pure
functions (``view``), so the same text is drawn once or redrawn by ``-w``
(``watch``). What it shows: the strategy and the step the rollout is at, each
live generation with its ISVCs, Ready count, share of external traffic and
role, each ISVC's readiness, the conditions, how long the ISVCs a step waits
for have left before the progress deadline, and the verbs that apply now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from disvc.builders import names
from disvc.builders.deadline import parse_time
from disvc.builders.generation import is_ready, ready_condition
from disvc.builders.spec import DEFAULT_PROGRESS_DEADLINE_SECONDS
from disvc.builders.types import Obj, find_condition
from disvc.cli import table

UNKNOWN: Final = "-"


def view(disvc: Obj, isvcs: Sequence[Obj], now: datetime) -> str:
    """The whole status screen, ending with a newline."""
    meta = disvc.get("metadata") or {}
    status = disvc.get("status") or {}
    name = str(meta.get("name", ""))
    lines = [
        f"Name:         {name}",
        f"Namespace:    {meta.get('namespace', '')}",
        f"Strategy:     {strategy(disvc)}",
        f"Step:         {step(disvc)}",
        f"Serving:      {status.get('activeGeneration') or 'nothing yet'}",
    ]
    if status.get("url"):
        lines.append(f"URL:          {status['url']}")
    observed = status.get("observedGeneration")
    if observed != meta.get("generation"):
        lines.append(
            f"Observed:     spec generation {observed or 'none'} of {meta.get('generation')}: "
            "the controller has not acted on the latest change yet"
        )
    lines.append("")
    lines.extend(table.lines(["GENERATION", "ISVCS", "READY", "TRAFFIC", "ROLE"], _generation_rows(disvc)))
    lines.append("")
    lines.extend(
        table.lines(["INFERENCESERVICE", "GENERATION", "READY", "REASON", "AGE"], _isvc_rows(name, isvcs, now))
    )
    lines.append("")
    lines.extend(table.lines(["CONDITION", "STATUS", "REASON", "AGE", "MESSAGE"], _condition_rows(status, now)))
    lines.append("")
    lines.append(f"Deadline:     {deadline(disvc, isvcs, now)}")
    hint = next_steps(disvc)
    if hint:
        lines.append(f"Next:         {hint}")
    return "\n".join(lines) + "\n"


def rollout(disvc: Obj) -> Mapping[str, Any]:
    value = (disvc.get("spec") or {}).get("rollout")
    return value if isinstance(value, Mapping) else {}


def canary_percent(disvc: Obj) -> int | None:
    """``spec.rollout.canaryTrafficPercent`` when it makes rollouts canaries (below 100)."""
    value = rollout(disvc).get("canaryTrafficPercent")
    return value if isinstance(value, int) and not isinstance(value, bool) and value < 100 else None


def strategy(disvc: Obj) -> str:
    spec = rollout(disvc)
    name = str(spec.get("strategy") or "BlueGreen")
    if name == "Rolling":
        name += f" (maxSurge {spec.get('maxSurge', 1)}, maxUnavailable {spec.get('maxUnavailable', 0)})"
    percent = canary_percent(disvc)
    if percent is not None:
        name += f", canary at {percent}% until promoted"
    return name


def progressing(disvc: Obj) -> Mapping[str, Any]:
    return find_condition(disvc.get("status") or {}, "Progressing") or {}


def generations(disvc: Obj) -> list[Mapping[str, Any]]:
    listed = (disvc.get("status") or {}).get("generations")
    return [g for g in listed if isinstance(g, Mapping)] if isinstance(listed, list) else []


def step(disvc: Obj) -> str:
    """Where the rollout is, in words, from the Progressing reason and the counts."""
    reason = progressing(disvc).get("reason")
    status = disvc.get("status") or {}
    active = status.get("activeGeneration")
    live = generations(disvc)
    newest = live[-1] if live else {}
    counts = f"{newest.get('readyReplicas', 0)}/{newest.get('replicas', 0)} Ready"
    spec = rollout(disvc)
    if reason == "Converged":
        return f"complete: {active} serves all traffic"
    if reason == "ScaleDownDelay":
        return f"complete: {active} serves all traffic; {progressing(disvc).get('message', '')}"
    if reason == "CanaryRunning":
        return (
            f"canary: {newest.get('name')} takes {newest.get('trafficPercent', 0)}% of external "
            f"traffic, {active} the rest; waiting for promote or abort"
        )
    if reason in {"AnalysisRunning", "AnalysisPaused", "AnalysisFailed"}:
        return _analysis_step(disvc, str(reason))
    if reason == "RollingOut":
        if spec.get("strategy") == "Rolling":
            old = sum(int(g.get("replicas", 0)) for g in live[:-1])
            return f"rolling: {newest.get('name')} {counts}, {old} ISVC(s) of older generations left"
        then = (
            f"then it takes {canary_percent(disvc)}% as a canary"
            if canary_percent(disvc) is not None
            else "then all traffic switches to it"
        )
        return f"bringing up {newest.get('name')} ({counts}, no traffic yet); {then}"
    if reason == "Scaling":
        return f"scaling {active}: {counts}"
    if reason == "ProgressDeadlineExceeded":
        return f"stalled: {newest.get('name')} is late ({counts}); {active} keeps serving"
    if reason in {"InvalidSpec", "ChildRejected"}:
        return f"stopped ({reason}): fix the DISVC; {active or 'nothing'} keeps serving"
    return "waiting for the controller" if not reason else str(reason)


def _analysis_step(disvc: Obj, reason: str) -> str:
    analysis = (disvc.get("status") or {}).get("analysis") or {}
    where = f"step {analysis.get('step', '?')} of {analysis.get('steps', '?')} at {analysis.get('weight', '?')}%"
    last = "; ".join(
        f"{m.get('metric')} {m.get('value', 'no data')} ({m.get('bound')}) {m.get('verdict')}"
        for m in analysis.get("measurements") or ()
    )
    shown = f"; last: {last}" if last else ""
    if reason == "AnalysisFailed":
        return f"aborted: analysis of {analysis.get('generation')} failed at {where}{shown}"
    if reason == "AnalysisPaused":
        return f"paused: {analysis.get('generation')} holds {where}; Prometheus does not answer{shown}"
    return f"analysis: {analysis.get('generation')} at {where}, {analysis.get('failures', 0)} failed{shown}"


def deadline(disvc: Obj, isvcs: Sequence[Obj], now: datetime) -> str:
    """How long the not-Ready ISVCs of the newest generation have left."""
    seconds = int(rollout(disvc).get("progressDeadlineSeconds") or DEFAULT_PROGRESS_DEADLINE_SECONDS)
    name = str((disvc.get("metadata") or {}).get("name", ""))
    by_generation: dict[int, list[Obj]] = {}
    for isvc in isvcs:
        parsed = names.parse_isvc_name(name, str((isvc.get("metadata") or {}).get("name", "")))
        if parsed is not None:
            by_generation.setdefault(parsed[0], []).append(isvc)
    if not by_generation:
        return f"{seconds}s per new ISVC; none exists"
    waiting = [isvc for isvc in by_generation[max(by_generation)] if not is_ready(isvc)]
    if not waiting:
        return f"{seconds}s per new ISVC; none is waiting"
    parts = []
    for isvc in sorted(waiting, key=lambda obj: str(obj["metadata"].get("name"))):
        created = parse_time(isvc["metadata"].get("creationTimestamp"))
        if created is None:
            continue
        left = seconds - int((now - created).total_seconds())
        when = f"{left}s left" if left > 0 else f"exceeded {-left}s ago"
        parts.append(f"{isvc['metadata']['name']} {when}")
    return f"{seconds}s per new ISVC; " + ("; ".join(parts) or "waiting")


def next_steps(disvc: Obj) -> str:
    name = str((disvc.get("metadata") or {}).get("name", ""))
    reason = progressing(disvc).get("reason")
    if reason == "CanaryRunning":
        return f"kubectl disvc promote {name}   or   kubectl disvc abort {name}"
    if reason in {"RollingOut", "ProgressDeadlineExceeded", "AnalysisRunning", "AnalysisPaused"}:
        return f"kubectl disvc abort {name} (back to the serving generation's template)"
    if reason == "AnalysisFailed":
        return f"kubectl disvc retry {name}   or   kubectl disvc abort {name}"
    return ""


def _generation_rows(disvc: Obj) -> list[list[str]]:
    status = disvc.get("status") or {}
    active = status.get("activeGeneration")
    live = generations(disvc)
    rows = []
    for position, generation in enumerate(live):
        label = generation.get("name")
        traffic = generation.get("trafficPercent")
        if label == active:
            role = "serving"
        elif position == len(live) - 1:
            role = "canary" if canary_percent(disvc) is not None and traffic else "new"
        else:
            role = "old"
        rows.append(
            [
                str(label),
                str(generation.get("replicas", 0)),
                f"{generation.get('readyReplicas', 0)}/{generation.get('replicas', 0)}",
                f"{traffic}%" if traffic is not None else "0%",
                role,
            ]
        )
    return rows


def _isvc_rows(name: str, isvcs: Sequence[Obj], now: datetime) -> list[list[str]]:
    rows = []
    for isvc in sorted(isvcs, key=lambda obj: _isvc_order(name, obj)):
        meta = isvc.get("metadata") or {}
        parsed = names.parse_isvc_name(name, str(meta.get("name", "")))
        condition = ready_condition(isvc) or {}
        rows.append(
            [
                str(meta.get("name", "")),
                names.generation_label(parsed[0]) if parsed else UNKNOWN,
                str(condition.get("status", "Unknown")),
                str(condition.get("reason") or ""),
                _age(meta.get("creationTimestamp"), now),
            ]
        )
    return rows


def _isvc_order(name: str, isvc: Obj) -> tuple[int, int, str]:
    text = str((isvc.get("metadata") or {}).get("name", ""))
    parsed = names.parse_isvc_name(name, text)
    return (*(parsed or (0, 0)), text)


def _condition_rows(status: Mapping[str, Any], now: datetime) -> list[list[str]]:
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        return []
    return [
        [
            str(c.get("type", "")),
            str(c.get("status", "")),
            str(c.get("reason", "")),
            _age(c.get("lastTransitionTime"), now),
            str(c.get("message", "")),
        ]
        for c in conditions
        if isinstance(c, Mapping)
    ]


def _age(timestamp: object, now: datetime) -> str:
    """kubectl's short age: ``45s``, ``3m``, ``2h``, ``5d``."""
    then = parse_time(timestamp)
    if then is None:
        return UNKNOWN
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
