"""Blue/green (the default): the new generation is brought up whole beside
the serving one; traffic switches in one write once every new ISVC is Ready,
and only then does the old generation go.

Needs twice the capacity during a rollout; in exchange traffic never reaches
a generation that is not fully Ready and a revert is instant (the serving
generation was never touched).
"""

from __future__ import annotations

from disvc.builders.strategies.base import Situation, Step, Traffic, steady


def step(situation: Situation) -> Step:
    if not situation.is_rolling_out:
        return steady(situation)
    if situation.may_switch and situation.target_is_complete():
        return steady(situation)
    return hold(situation)


def hold(situation: Situation) -> Step:
    """Target built whole beside the serving generation, which keeps every
    live ISVC and all the traffic."""
    serving = situation.serving
    assert serving is not None
    target = situation.target
    return Step(
        isvcs={
            target: frozenset(range(situation.spec.replicas)),
            serving: frozenset(situation.generations[serving].isvcs),
        },
        services=frozenset({target, serving}),
        active=serving,
        traffic=Traffic(primary=serving),
    )
