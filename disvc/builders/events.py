"""The Events a plan deserves: one per kind of change, none for a converged state.

Users read Events with ``kubectl describe``; a line per object would drown
the useful ones, so changes are summarised (``Scaled``, ``RolloutStarted``,
``RolloutComplete``, else ``Created``/``Updated``/``Deleted`` listing the
objects). Warnings (``InvalidSpec``, ``ChildConflict``, ``ChildRejected``,
``ProgressDeadlineExceeded``) are raised only when the problem first appears
or changes, not on every resync of the same problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from disvc.builders import names
from disvc.builders.conditions import Condition
from disvc.builders.diff import Plan
from disvc.builders.generation import Rollout
from disvc.builders.types import EventSpec, Obj, find_condition

MAX_LISTED: Final = 5
"""Objects named in one Event message before it says "and N more"."""


def plan_events(
    plan: Plan,
    disvc_name: str,
    rollout: Rollout,
    switched: bool,
    replicas: int,
    live_replicas: int,
    target_was_live: bool,
    scale_down_delay_seconds: int = 0,
) -> list[EventSpec]:
    """Normal Events for the writes in ``plan``.

    ``live_replicas`` counts the target generation's live ISVCs before the
    plan; ``target_was_live`` says whether that generation existed at all
    (so its first ISVCs are a creation, not a scale-up). The generation a
    switch leaves goes after ``scale_down_delay_seconds``."""
    created = [_describe_obj(obj) for obj in plan.create]
    created_gens = [_generation_of(disvc_name, obj_name) for _, obj_name in created]
    updated = [_describe_obj(obj) for obj in plan.update]
    deleted: list[tuple[str, str]] = [(ref.kind, ref.name) for ref in plan.delete]
    deleted_gens = [_generation_of(disvc_name, ref.name) for ref in plan.delete]
    events: list[EventSpec] = []
    target = rollout.target

    if rollout.is_rolling_out and not switched and not target_was_live:
        started = [c for c, g in zip(created, created_gens) if g == target]
        if started:
            events.append(
                EventSpec(
                    "Normal",
                    "RolloutStarted",
                    f"Rolling out generation {names.generation_label(target)} "
                    f"beside serving generation {names.generation_label(rollout.serving or 0)}: "
                    f"created {_list(started)}",
                )
            )
            created = [c for c in created if c not in started]
    if switched and rollout.serving is not None:
        old = names.generation_label(rollout.serving)
        going = (
            f"generation {old} goes in {scale_down_delay_seconds}s"
            if scale_down_delay_seconds > 0
            else f"deleting generation {old}"
        )
        events.append(
            EventSpec(
                "Normal",
                "RolloutComplete",
                f"Generation {names.generation_label(target)} is Ready and serves; {going}",
            )
        )
        updated = [u for u in updated if u[0] != "Ingress"]
        deleted = [d for d, g in zip(deleted, deleted_gens) if g != rollout.serving]
    if not rollout.is_rolling_out and target_was_live:
        scaled_up = [
            c for c, g in zip(created, created_gens) if g == target and c[0] == "InferenceService"
        ]
        scaled_down = [
            d
            for d, g in zip(deleted, [_generation_of(disvc_name, n) for _, n in deleted])
            if g == target and d[0] == "InferenceService"
        ]
        if scaled_up or scaled_down:
            events.append(
                EventSpec(
                    "Normal",
                    "Scaled",
                    f"Scaled generation {names.generation_label(target)} "
                    f"from {live_replicas} to {replicas} replicas",
                )
            )
            created = [c for c in created if c not in scaled_up]
            deleted = [d for d in deleted if d not in scaled_down]
    if created:
        events.append(EventSpec("Normal", "Created", f"Created {_list(created)}"))
    if updated:
        events.append(EventSpec("Normal", "Updated", f"Updated {_list(updated)}"))
    if deleted:
        events.append(EventSpec("Normal", "Deleted", f"Deleted {_list(deleted)}"))
    return events


def warning_event(
    ready: Condition, previous_status: Mapping[str, Any]
) -> EventSpec | None:
    """A Warning for a ``Ready=False`` problem the previous status did not report yet."""
    if ready.status or ready.reason not in ("InvalidSpec", "ChildConflict", "ChildRejected"):
        return None
    previous = find_condition(previous_status, "Ready")
    if (
        previous is not None
        and previous.get("status") == "False"
        and previous.get("reason") == ready.reason
        and previous.get("message") == ready.message
    ):
        return None
    return EventSpec("Warning", ready.reason, ready.message)


def deadline_event(
    progressing: Condition, previous_status: Mapping[str, Any]
) -> EventSpec | None:
    """A Warning when a rollout or scale-up first misses its progress deadline."""
    if progressing.reason != "ProgressDeadlineExceeded":
        return None
    previous = find_condition(previous_status, "Progressing")
    if previous is not None and previous.get("reason") == progressing.reason:
        return None
    return EventSpec("Warning", progressing.reason, progressing.message)


def describe(kind: str, name: str) -> str:
    return f"{kind} {name}"


def _describe_obj(obj: Obj) -> tuple[str, str]:
    return (str(obj.get("kind", "")), str(obj.get("metadata", {}).get("name", "")))


def _generation_of(disvc_name: str, obj_name: str) -> int | None:
    parsed = names.parse_isvc_name(disvc_name, obj_name)
    if parsed is not None:
        return parsed[0]
    return names.parse_generation_name(disvc_name, obj_name)


def _list(objects: Sequence[tuple[str, str]]) -> str:
    shown = ", ".join(describe(kind, name) for kind, name in objects[:MAX_LISTED])
    rest = len(objects) - MAX_LISTED
    return f"{shown} and {rest} more" if rest > 0 else shown
