"""The progress deadline: which ISVCs a step waits for have waited too long.

Derived from live objects and ``now`` only: an ISVC's wait starts at its
``creationTimestamp``, so a restarted controller computes the same deadline
and a rolling rollout gives each batch of new ISVCs its own. A failed ISVC
(KServe's ``Ready=False`` with a reason) is named with that reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from disvc.builders.generation import is_ready, ready_condition
from disvc.builders.strategies.base import Situation, Step
from disvc.builders.types import Obj

MAX_NAMED = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    overdue: tuple[str, ...]
    """``name (reason: message)`` of each waited-for ISVC past the deadline."""
    recheck_after: float | None
    """Seconds until the next waited-for ISVC reaches the deadline, if any."""


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)  # 3.11 reads the Z suffix
    except ValueError:
        return None


def waiting(situation: Situation, step: Step) -> list[Obj]:
    """Live ISVCs of the target generation ``step`` needs Ready."""
    target = situation.generations.get(situation.target)
    if target is None:
        return []
    wanted = step.isvcs.get(situation.target, frozenset())
    replicas = situation.spec.replicas
    return [obj for index, obj in sorted(target.isvcs.items()) if index in wanted and index < replicas]


def judge(waiting: Iterable[Obj], deadline_seconds: int, now: str) -> Verdict:
    """``waiting``: live ISVCs the current step needs Ready (see ``waiting``)."""
    current = parse_time(now)
    overdue: list[str] = []
    remaining: list[float] = []
    for obj in waiting:
        if is_ready(obj):
            continue
        created = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
        if created is None or current is None:
            continue  # just created: the wait starts now
        left = deadline_seconds - (current - created).total_seconds()
        if left <= 0:
            overdue.append(_describe(obj))
        else:
            remaining.append(left)
    return Verdict(tuple(sorted(overdue)), min(remaining) if remaining else None)


def message(generation_label: str, deadline_seconds: int, overdue: tuple[str, ...]) -> str:
    named = "; ".join(overdue[:MAX_NAMED])
    more = f" and {len(overdue) - MAX_NAMED} more" if len(overdue) > MAX_NAMED else ""
    return (
        f"Generation {generation_label} not Ready within {deadline_seconds}s: {named}{more}; "
        "the serving generation keeps serving"
    )


def _describe(obj: Obj) -> str:
    name = str((obj.get("metadata") or {}).get("name", ""))
    ready = ready_condition(obj)
    if ready is None or ready.get("status") != "False" or not ready.get("reason"):
        return f"{name} not Ready"
    text = f"{name} Ready=False ({ready['reason']}"
    if ready.get("message"):
        text += f": {ready['message']}"
    return text + ")"
