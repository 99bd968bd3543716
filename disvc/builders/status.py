"""The DISVC's ``.status``: what serves, how many replicas are Ready, and why not.

Built from an ``Observed`` (the counts, the URL, the history and the two
conditions ``conditions`` chose) as a pure function, and deterministic (no clock:
``now`` is a parameter, and a condition keeps its ``lastTransitionTime`` while
its status does not change), so an unchanged world yields a status equal to
the live one and the reconciler writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from disvc.builders import names
from disvc.builders.conditions import Condition
from disvc.builders.generation import LiveGeneration
from disvc.builders.strategies.base import Traffic
from disvc.builders.types import Obj, find_condition


@dataclass(frozen=True, slots=True)
class GenerationCount:
    """One live generation in ``status.generations``."""

    number: int
    replicas: int
    ready_replicas: int
    traffic_percent: int | None
    """Share of external requests it takes (None: it takes none, or nothing is Ready)."""


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything the status reports, as the builders worked it out."""

    observed_generation: int
    disvc_name: str
    namespace: str
    active_generation: int | None
    replicas: int
    """ISVCs of the active generation that exist (not terminating)."""
    ready_replicas: int
    url: str | None
    """External URL, or None when there is no Ingress."""
    conditions: tuple[Condition, ...]
    kept_url: str | None = None
    """With an invalid spec the URL cannot be recomputed: the previous one, if any."""
    generations: tuple[GenerationCount, ...] = ()
    """Every live generation with its counts, oldest first."""
    history: tuple[Obj, ...] = ()
    """``status.history`` (see ``history``)."""
    session_affinity: Obj | None = None
    """``status.sessionAffinity`` (see ``affinity``)."""


def counted_generations(traffic: Traffic, after: Mapping[int, LiveGeneration]) -> list[LiveGeneration]:
    """The generations ``status.replicas`` counts: those external traffic reaches
    through the primary route (all of them while a rolling rollout runs)."""
    if traffic.primary is None:
        return [after[n] for n in sorted(after)]
    primary = after.get(traffic.primary)
    return [primary] if primary is not None else []


def generation_counts(
    traffic: Traffic,
    after: Mapping[int, LiveGeneration],
    leaving: frozenset[int] = frozenset(),
) -> tuple[GenerationCount, ...]:
    """``status.generations``: every generation in ``after`` with its counts and
    its share of external requests (by Ready replicas when no route picks one).
    A generation in ``leaving`` (kept for the scale-down delay) takes 0%."""
    shares: dict[int, int] = dict.fromkeys(leaving, 0)
    if traffic.primary is not None:
        shares[traffic.primary] = 100 - (traffic.canary_percent if traffic.canary is not None else 0)
        if traffic.canary is not None:
            shares[traffic.canary] = traffic.canary_percent
    else:
        ready = {
            n: gen.ready_count() for n, gen in after.items() if gen.ready_count() and n not in leaving
        }
        total = sum(ready.values())
        for n in sorted(ready):
            shares[n] = ready[n] * 100 // total
        if ready:
            # rounding leftovers go to the newest generation, so the shares sum to 100
            shares[max(ready)] += 100 - sum(shares.values())
    return tuple(
        GenerationCount(
            number=n,
            replicas=len(after[n].isvcs),
            ready_replicas=after[n].ready_count(),
            traffic_percent=shares.get(n),
        )
        for n in sorted(after)
    )


def address_url(disvc_name: str, namespace: str, generation: int) -> str:
    """``status.address.url``: the serving generation's in-cluster Service."""
    return f"http://{names.generation_name(disvc_name, generation)}.{namespace}.svc.cluster.local"


def status(observed: Observed, previous_status: Mapping[str, Any], now: str) -> Obj:
    """The complete ``.status`` for ``observed``.

    ``url`` and ``address`` appear only once an ISVC of the active generation
    is Ready: before that there is nothing to send requests to."""
    result: Obj = {
        "observedGeneration": observed.observed_generation,
        "replicas": observed.replicas,
        "readyReplicas": observed.ready_replicas,
        "selector": names.selector(observed.disvc_name),
    }
    if observed.active_generation is not None:
        result["activeGeneration"] = names.generation_label(observed.active_generation)
        if observed.ready_replicas > 0:
            url = observed.url or observed.kept_url
            if url:
                result["url"] = url
            result["address"] = {
                "url": address_url(
                    observed.disvc_name, observed.namespace, observed.active_generation
                )
            }
    result["conditions"] = [
        _condition(c, observed.observed_generation, previous_status, now)
        for c in observed.conditions
    ]
    if observed.session_affinity is not None:
        result["sessionAffinity"] = observed.session_affinity
    if observed.generations:
        result["generations"] = [_generation(g) for g in observed.generations]
    if observed.history:
        result["history"] = list(observed.history)
    return result


def _generation(count: GenerationCount) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": names.generation_label(count.number),
        "replicas": count.replicas,
        "readyReplicas": count.ready_replicas,
    }
    if count.traffic_percent is not None:
        entry["trafficPercent"] = count.traffic_percent
    return entry


def _condition(
    condition: Condition, observed_generation: int, previous_status: Mapping[str, Any], now: str
) -> dict[str, Any]:
    status_word = "True" if condition.status else "False"
    previous = find_condition(previous_status, condition.type)
    transition = now
    if previous is not None and previous.get("status") == status_word:
        kept = previous.get("lastTransitionTime")
        if isinstance(kept, str) and kept:
            transition = kept
    return {
        "type": condition.type,
        "status": status_word,
        "observedGeneration": observed_generation,
        "lastTransitionTime": transition,
        "reason": condition.reason,
        "message": condition.message,
    }


def with_conditions(
    status_: Obj, replaced: Sequence[Condition], previous_status: Mapping[str, Any], now: str
) -> Obj:
    """``status_`` with ``replaced`` first, in place of its conditions of the same types."""
    generation = int(status_.get("observedGeneration") or 0)
    types = {condition.type for condition in replaced}
    kept = [c for c in status_.get("conditions", []) if c.get("type") not in types]
    new = [_condition(c, generation, previous_status, now) for c in replaced]
    return {**status_, "conditions": [*new, *kept]}
