"""The scale-down delay: how long a generation that traffic left stays up.

A router applies a route change some time after the controller writes it
(ingress-nginx within a few seconds, a cloud load balancer within tens of
seconds), and in-cluster clients may still hold the old generation's Service
address. A generation deleted in the reconcile that moves the route would
answer that window's requests with errors, so the generation traffic left
keeps its live ISVCs and Service for ``spec.rollout.scaleDownDelaySeconds``
after the switch, taking no external traffic, and goes once that time has
passed.

The switch time is read from the DISVC's status, never from memory: the
switch writes the ``servedUntil`` of the old generation's ``status.history``
entry. A restarted controller therefore finds the same end of the delay.
When the status write after a switch was lost, the old generation is still
``status.activeGeneration``: the next reconcile switches again and the delay
starts then (later, never earlier). Without a history entry (a status wiped
by hand) a generation that no longer serves goes at once, as with a delay of 0.

A revert to a generation still in its delay makes it the target again: it
stops being one that leaves, but until a step routes traffic back to it
``desired`` keeps every live ISVC it had, so routers that have not moved off
it still find the replicas they were sent to.

Neighbours: ``desired`` hides the leaving generations from the strategy and
adds them back to its step with ``keep`` (the strategy is told how many
ISVCs that holds: a rolling one counts them against ``maxSurge``);
``conditions`` reports the delay (``Progressing=True ScaleDownDelay``);
``status`` lists them with ``trafficPercent: 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from disvc.builders import deadline, history, names
from disvc.builders.generation import LiveGeneration
from disvc.builders.strategies.base import Step


@dataclass(frozen=True, slots=True)
class Leaving:
    """A generation traffic has left, kept up until ``until``."""

    number: int
    until: datetime
    seconds_left: float
    """Seconds from the reconcile's ``now`` to ``until`` (always above 0)."""

    @property
    def until_text(self) -> str:
        """``until`` as RFC 3339 in UTC, whole seconds, as status times are written."""
        return self.until.strftime("%Y-%m-%dT%H:%M:%SZ")


def switched_at(
    previous_status: Mapping[str, Any], generation: LiveGeneration
) -> datetime | None:
    """When traffic left ``generation``: the ``servedUntil`` of its latest
    ``status.history`` entry, or None when it never served or serves still.

    An entry whose template hash differs from the live generation's is
    another generation that once had the same number: it says nothing."""
    label = names.generation_label(generation.number)
    matching = [e for e in history.entries(previous_status) if e.get("generation") == label]
    if not matching:
        return None
    entry = matching[-1]
    hash_ = entry.get("templateHash")
    if isinstance(hash_, str) and generation.template_hashes and hash_ not in generation.template_hashes:
        return None
    return deadline.parse_time(entry.get("servedUntil"))


def leaving(
    previous_status: Mapping[str, Any],
    generations: Mapping[int, LiveGeneration],
    delay_seconds: int,
    now: str,
) -> dict[int, Leaving]:
    """The live generations traffic left less than ``delay_seconds`` before
    ``now``. The generation the status names active is never one of them."""
    current = deadline.parse_time(now)
    if delay_seconds <= 0 or current is None:
        return {}
    active = names.parse_generation_label(previous_status.get("activeGeneration"))
    result: dict[int, Leaving] = {}
    for number, generation in generations.items():
        if number == active:
            continue
        at = switched_at(previous_status, generation)
        if at is None:
            continue
        until = at + timedelta(seconds=delay_seconds)
        # a clock behind the one that wrote servedUntil (a new leader on
        # another node) must not make us wait longer than the delay
        left = min(float(delay_seconds), (until - current).total_seconds())
        if left > 0:
            result[number] = Leaving(number, until, left)
    return result


def starting(number: int, delay_seconds: int, now: str) -> Leaving | None:
    """Generation ``number``, which traffic leaves in this reconcile, kept for
    the whole delay (None with a delay of 0: it goes at once)."""
    current = deadline.parse_time(now)
    if delay_seconds <= 0 or current is None:
        return None
    return Leaving(number, current + timedelta(seconds=delay_seconds), float(delay_seconds))


def keep(step: Step, kept: Mapping[int, Leaving], generations: Mapping[int, LiveGeneration]) -> Step:
    """``step`` with every live ISVC and the Service of each ``kept`` generation
    left in place. Traffic and the active generation are the step's own."""
    if not kept:
        return step
    isvcs = dict(step.isvcs)
    services = set(step.services)
    for number in kept:
        live = generations.get(number)
        if live is None:
            continue
        if live.isvcs:
            isvcs[number] = frozenset(isvcs.get(number, frozenset()) | set(live.isvcs))
        if live.has_service:
            services.add(number)
    return replace(step, isvcs=isvcs, services=frozenset(services))
