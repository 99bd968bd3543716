"""The DISVC's two conditions, ``Ready`` and ``Progressing``, and their reasons.

Each builder here picks a condition's status, reason and message from what
one reconcile knows: the rollout step (``strategies``), the live generations
as the plan leaves them (``generation``), the plan's conflicts (``diff``) and
the progress deadline's verdict (``deadline``); or, when there is nothing to
step through, an invalid spec or a write the API refused. ``status`` turns a
``Condition`` into its ``.status.conditions`` entry (keeping
``lastTransitionTime`` while the status holds) and ``events`` raises the
Warnings a new problem deserves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from disvc.builders import deadline, diff, names, scaledown
from disvc.builders.diff import Plan
from disvc.builders.generation import LiveGeneration
from disvc.builders.spec import DisvcSpec, InvalidSpec
from disvc.builders.strategies.base import Situation, Step

ConditionType: TypeAlias = Literal["Ready", "Progressing"]
Reason: TypeAlias = Literal[
    "AllReplicasReady",
    "ReplicasNotReady",
    "InvalidSpec",
    "ChildConflict",
    "ChildRejected",
    "RollingOut",
    "Scaling",
    "Converged",
    "ProgressDeadlineExceeded",
    "CanaryRunning",
    "ScaleDownDelay",
    "DeploymentModeMismatch",
    "ServerlessModeRejected",
    "RouteNotAccepted",
    "AnalysisRunning",
    "AnalysisPaused",
    "AnalysisFailed",
]

CONDITION_TYPES: Final[tuple[ConditionType, ...]] = ("Ready", "Progressing")


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition before its bookkeeping fields are filled in."""

    type: ConditionType
    status: bool
    reason: Reason
    message: str


def ready(
    spec: DisvcSpec,
    situation: Situation,
    step: Step,
    after: Mapping[int, LiveGeneration],
    plan: Plan,
) -> Condition:
    """``Ready``: a name held by a foreign object first, else whether the
    replicas that serve after this step are Ready (across generations while a
    rolling rollout routes to all of them)."""
    if plan.conflicts:
        held = ", ".join(
            f"{kind} {name}"
            for kind, name in (diff.child_id(obj) or ("object", "?") for obj in plan.conflicts)
        )
        return Condition(
            "Ready",
            False,
            "ChildConflict",
            f"{held}: name taken by an object this DistributedInferenceService "
            "does not control; rename or delete it",
        )
    active = after.get(step.active)
    if step.traffic.primary is None:
        ready_count = sum(gen.ready_count() for gen in after.values())
        needed = spec.replicas - spec.rollout.unavailable(spec.replicas)
        ok = ready_count >= needed
        labels = ", ".join(names.generation_label(n) for n in sorted(after))
        message = (
            f"{ready_count}/{spec.replicas} replicas ready across generations {labels} "
            f"(at least {needed} while rolling)"
        )
    elif step.active != situation.target:
        total = len(active.isvcs) if active else 0
        ready_count = active.ready_count() if active else 0
        ok = ready_count == total
        message = (
            f"{ready_count}/{total} replicas of serving generation "
            f"{names.generation_label(step.active)} ready"
        )
    else:
        ready_count = active.ready_count(range(spec.replicas)) if active else 0
        ok = ready_count == spec.replicas
        message = f"{ready_count}/{spec.replicas} replicas ready"
    return Condition(
        "Ready", ok, "AllReplicasReady" if ok else "ReplicasNotReady", message
    )


def progressing(
    spec: DisvcSpec,
    situation: Situation,
    step: Step,
    after: Mapping[int, LiveGeneration],
    verdict: deadline.Verdict,
    leaving: Sequence[scaledown.Leaving] = (),
) -> Condition:
    """``Progressing``: a missed deadline first, then a running canary, a
    rollout, a scale, a generation waiting out the scale-down delay
    (``leaving``: its deletion is still to come), or nothing under way
    (``Converged``). The delay's message names when each leaving
    generation goes, not the seconds left, so it holds still and a
    reconcile during the delay writes no status."""
    label = names.generation_label(situation.target)
    target = after.get(situation.target)
    ready_count = target.ready_count(range(spec.replicas)) if target else 0
    if verdict.overdue:
        return Condition(
            "Progressing",
            False,
            "ProgressDeadlineExceeded",
            deadline.message(label, spec.rollout.progress_deadline_seconds, verdict.overdue),
        )
    if step.traffic.canary is not None:
        return Condition(
            "Progressing",
            True,
            "CanaryRunning",
            f"Canary generation {label} takes {step.traffic.canary_percent}% of external "
            "traffic; promote it by removing spec.rollout.canaryTrafficPercent or setting it "
            "to 100, or roll back by restoring the previous template",
        )
    others = [n for n in sorted(after) if n != situation.target and after[n].isvcs]
    if step.active != situation.target or others:
        message = f"Rolling out generation {label}: {ready_count}/{spec.replicas} replicas ready"
        if others:
            left = ", ".join(
                f"{names.generation_label(n)} has {_count(len(after[n].isvcs))}" for n in others
            )
            message += f"; {left}"
        return Condition("Progressing", True, "RollingOut", message + _going(spec, leaving))
    live_indices = set(target.isvcs) if target else set()
    if live_indices != set(range(spec.replicas)) or ready_count < spec.replicas:
        # Under way until every wanted replica exists and is Ready, as a
        # Deployment keeps Progressing until its new Pods are available.
        return Condition(
            "Progressing",
            True,
            "Scaling",
            f"Scaling generation {label} to {_count(spec.replicas)}: {ready_count}/{spec.replicas} ready"
            + _going(spec, leaving),
        )
    if leaving:
        return Condition(
            "Progressing",
            True,
            "ScaleDownDelay",
            f"Generation {label} serves with {_count(spec.replicas)}{_going(spec, leaving)}",
        )
    return Condition(
        "Progressing", False, "Converged", f"Generation {label} has {_count(spec.replicas)}"
    )


def mode_problem(reason: str, message: str) -> Condition:
    """``Ready=False`` when KServe runs the ISVCs in another mode than asked
    for, or refused the mode (``mode.problem``)."""
    known: Reason = (
        "ServerlessModeRejected" if reason == "ServerlessModeRejected" else "DeploymentModeMismatch"
    )
    return Condition("Ready", False, known, message)


def invalid(problem: InvalidSpec) -> tuple[Condition, Condition]:
    """``Ready`` and ``Progressing`` while the spec cannot be built: both False,
    reason ``InvalidSpec``; the serving children keep serving meanwhile."""
    return (
        Condition("Ready", False, "InvalidSpec", str(problem)),
        Condition("Progressing", False, "InvalidSpec", "Nothing changes until the spec is fixed"),
    )


def route_refused(refusal: str) -> Condition:
    """``Ready`` while the Gateway refuses our route (``routestatus``): the
    replicas may be Ready, but no external request reaches them."""
    return Condition("Ready", False, "RouteNotAccepted", refusal)


def rejected(refusal: str) -> tuple[Condition, Condition]:
    """``Ready`` and ``Progressing`` after the API refused a child: both
    False, reason ``ChildRejected``; nothing moves until the API accepts the
    write, which the controller retries with backoff."""
    return (
        Condition("Ready", False, "ChildRejected", refusal),
        Condition(
            "Progressing",
            False,
            "ChildRejected",
            "Stopped: the API refused a child (see Ready); retried with backoff until it is accepted",
        ),
    )


def _going(spec: DisvcSpec, leaving: Sequence[scaledown.Leaving]) -> str:
    """When each generation traffic left is deleted (empty when none waits)."""
    delay = spec.rollout.scale_down_delay_seconds
    return "".join(
        f"; generation {names.generation_label(kept.number)} takes no traffic and is deleted "
        f"at {kept.until_text}, {delay}s after traffic left it (spec.rollout.scaleDownDelaySeconds)"
        for kept in sorted(leaving, key=lambda kept: kept.number)
    )


def _count(replicas: int) -> str:
    return f"{replicas} replica" if replicas == 1 else f"{replicas} replicas"
