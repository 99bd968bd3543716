"""Rollout strategies: how a new generation replaces the serving one.

Each strategy is one module exposing ``step(Situation) -> Step`` (the
interface is in ``base``): ``bluegreen`` (the default), ``rolling`` and
``canary``. A new strategy is one new module and one line in ``for_spec``.
"""

from __future__ import annotations

from disvc.builders.spec import RolloutSpec
from disvc.builders.strategies import bluegreen, canary, rolling
from disvc.builders.strategies.base import Strategy


def for_spec(rollout: RolloutSpec) -> Strategy:
    """The strategy ``spec.rollout`` asks for."""
    if rollout.is_canary:
        return canary
    if rollout.strategy == "Rolling":
        return rolling
    return bluegreen
