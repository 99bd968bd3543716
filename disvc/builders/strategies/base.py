"""The one small interface every rollout strategy implements.

A strategy is a pure function from a ``Situation`` (the spec, the live
generations, which one serves and which one the spec asks for) to a
``Step``: which replica ISVCs of each generation exist once this reconcile's
writes are made, which generation Services stay, where external traffic
goes, and which generation ``status.activeGeneration`` names. ``children``
turns a step into objects and a plan, ``desired`` into a status, and
``desired`` asks again on the next reconcile: a strategy keeps no state, so a
restarted controller resumes any rollout from live objects alone.

A step must never claim a generation serves (``active``) unless it routes
traffic there in the same step, and must never drop the serving generation's
last Ready ISVC before its successor is Ready (rolling: never below
``replicas - maxUnavailable`` Ready).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from disvc.builders.generation import LiveGeneration
from disvc.builders.spec import DisvcSpec


@dataclass(frozen=True, slots=True)
class CanaryGate:
    """What automated analysis (``builders.analysis``) lets a canary do now."""

    weight: int
    """The canary's share of external requests at the current step."""
    promote: bool = False
    """Every step passed: switch to the canary."""
    aborted: bool = False
    """The analysis failed: traffic back to the serving generation, the canary goes."""
    keep_canary: bool = False
    """Aborted, but the canary's ISVCs and Service stay (without traffic) for
    the scale-down delay: a router that applies the route change late must
    not send the canary's share to a Service without endpoints."""


@dataclass(frozen=True, slots=True)
class Situation:
    """What a strategy decides from: everything is derived from live objects."""

    spec: DisvcSpec
    generations: Mapping[int, LiveGeneration]
    """Live generations by number (ISVCs and Service each)."""
    serving: int | None
    """The generation external traffic reaches now (None: nothing serves yet)."""
    target: int
    """The generation whose template matches the spec."""
    may_switch: bool = True
    """False when a child's name is held by a foreign object: traffic must
    not move to a generation that may not be ours."""
    held_isvcs: int = 0
    """Live ISVCs of generations traffic has left that wait out the
    scale-down delay (``scaledown``): not in ``generations`` and never the
    strategy's to delete, but they take capacity until they go."""
    gate: CanaryGate | None = None
    """Set when a canary runs under automated analysis: its weight, or promote, or abort."""

    @property
    def is_rolling_out(self) -> bool:
        return self.serving is not None and self.serving != self.target

    def target_is_complete(self) -> bool:
        """Every wanted replica of the target generation exists and is Ready,
        and its Service exists (so there is something to route to)."""
        target = self.generations.get(self.target)
        return (
            target is not None
            and target.has_service
            and target.is_complete(self.spec.replicas)
        )


@dataclass(frozen=True, slots=True)
class Traffic:
    """Where external requests go after this step."""

    primary: int | None
    """Generation whose Service the Ingress (or HTTPRoute) names; None means
    the DISVC-level Service ``N``, which spans every generation in proportion
    to its Ready replicas."""
    canary: int | None = None
    """A second generation taking ``canary_percent`` of external requests."""
    canary_percent: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """The state one reconcile moves the DISVC to."""

    isvcs: Mapping[int, frozenset[int]]
    """Generation -> replica indices that exist after this step. The target
    generation's are built (created when missing); another generation's are
    kept as they live (its template is gone from the spec). Every other live
    ISVC is deleted."""
    services: frozenset[int]
    """Generations whose Service ``N-v<g>`` exists after this step."""
    active: int
    """``status.activeGeneration``: the generation that serves after this step."""
    traffic: Traffic


class Strategy(Protocol):
    """A rollout strategy: one module per strategy, listed in ``strategies``."""

    def step(self, situation: Situation) -> Step:
        """The next step from ``situation`` (pure, deterministic)."""
        ...


def steady(situation: Situation) -> Step:
    """The target generation alone, whole, serving: where every rollout ends."""
    target = situation.target
    return Step(
        isvcs={target: frozenset(range(situation.spec.replicas))},
        services=frozenset({target}),
        active=target,
        traffic=Traffic(primary=target),
    )
