"""Canary (``spec.rollout.canaryTrafficPercent``): blue/green capacity, but
once the new generation is Ready it takes only that share of external
requests, and nothing more happens until the user promotes it (removes the
field or sets 100: the blue/green switch) or reverts the template (the new
generation goes).

Under automated analysis (``spec.rollout.analysis``) the situation carries
a ``CanaryGate`` (see ``builders.analysis``): the weight of the current
step instead of ``canaryTrafficPercent``, the switch once every step has
passed, and, after a failed analysis, the serving generation alone (the
canary's ISVCs go, so their accelerators are freed).
"""

from __future__ import annotations

from dataclasses import replace

from disvc.builders.strategies import bluegreen
from disvc.builders.strategies.base import Situation, Step, Traffic, steady


def step(situation: Situation) -> Step:
    if not situation.is_rolling_out:
        return steady(situation)
    gate = situation.gate
    if gate is not None and gate.aborted:
        return serving_alone(situation, keep_target=gate.keep_canary)
    held = bluegreen.hold(situation)
    if not (situation.may_switch and situation.target_is_complete()):
        return held
    if gate is not None and gate.promote:
        return steady(situation)
    percent = gate.weight if gate is not None else situation.spec.rollout.canary_traffic_percent or 0
    return replace(
        held,
        traffic=Traffic(
            primary=held.traffic.primary, canary=situation.target, canary_percent=percent
        ),
    )


def serving_alone(situation: Situation, keep_target: bool = False) -> Step:
    """The serving generation with every live ISVC and all the traffic; the
    target's live ISVCs and Service stay too, without traffic, if ``keep_target``."""
    serving = situation.serving
    assert serving is not None
    isvcs = {serving: frozenset(situation.generations[serving].isvcs)}
    services = {serving}
    target = situation.generations.get(situation.target)
    if keep_target and target is not None:
        if target.isvcs:
            isvcs[situation.target] = frozenset(target.isvcs)
        if target.has_service:
            services.add(situation.target)
    return Step(
        isvcs=isvcs,
        services=frozenset(services),
        active=serving,
        traffic=Traffic(primary=serving),
    )
