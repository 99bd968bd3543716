"""Canary (``spec.rollout.canaryTrafficPercent``): blue/green capacity, but
once the new generation is Ready it takes only that share of external
requests, and nothing more happens until the user promotes it (removes the
field or sets 100: the blue/green switch) or reverts the template (the new
generation goes).
"""

from __future__ import annotations

from dataclasses import replace

from disvc.builders.strategies import bluegreen
from disvc.builders.strategies.base import Situation, Step, Traffic, steady


def step(situation: Situation) -> Step:
    if not situation.is_rolling_out:
        return steady(situation)
    held = bluegreen.hold(situation)
    if not (situation.may_switch and situation.target_is_complete()):
        return held
    percent = situation.spec.rollout.canary_traffic_percent or 0
    return replace(
        held,
        traffic=Traffic(
            primary=held.traffic.primary, canary=situation.target, canary_percent=percent
        ),
    )
