"""The single entry point of the builders: DISVC + live children -> what to do.

Shared by the reconciler and by ``disvc render``. ``state`` reads the spec
(``spec``), works out which generation serves and which one the spec asks
for (``generation``), builds the children (``isvc``, ``service``,
``ingress``), diffs them against the live ones (``diff``) and derives the
status (``status``) and the Events (``events``). It is a pure function of
its arguments, so the same world always gives the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from disvc.builders import (
    diff,
    events,
    generation,
    ingress,
    isvc,
    names,
    ownership,
    protocol,
    service,
    status,
)
from disvc.builders import (
    spec as disvc_spec,
)
from disvc.builders.diff import ChildId, Plan
from disvc.builders.generation import LiveGeneration, Rollout
from disvc.builders.protocol import ServingProtocol
from disvc.builders.spec import DisvcSpec, InvalidSpec
from disvc.builders.status import Condition
from disvc.builders.types import EventSpec, Obj


CONFLICT_RECHECK_SECONDS: Final = 10.0
"""How often a DISVC blocked by a foreign object looks again whether the name
is free (SPEC: converge within 30 s of the object's removal)."""


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """Controller-wide settings that shape children (from command-line flags)."""

    ingress_domain: str = "example.com"
    """Ingress hosts are ``<name>-<namespace>.<ingress_domain>``."""
    ingress_class: str | None = None
    """Ingress class when the DISVC does not name one (None: cluster default)."""
    now: str = "1970-01-01T00:00:00Z"
    """RFC 3339 time stamped on conditions whose status changes (builders read no clock)."""


@dataclass(frozen=True, slots=True)
class Desired:
    """Everything the reconciler needs to converge one DISVC."""

    plan: Plan
    """Writes to make, already diffed against the live children."""
    status: Obj
    """The complete desired ``.status``; patch it only if it differs from live."""
    events: tuple[EventSpec, ...] = field(default=())
    """Events to record, only for changes this plan makes (none when converged)."""
    recheck_after: float | None = None
    """Seconds after which to reconcile again even without a watch event
    (0: at once, rate limited: the plan leaves another step to take)."""


def state(disvc: Obj, live: Sequence[Obj], options: BuildOptions) -> Desired:
    """Compute the plan and the status for ``disvc``.

    ``live`` holds the DISVC's children as read from the API: objects it
    controls, plus any object with a clashing name (foreign) that the reader
    found. Never raises for bad input: an invalid spec yields an empty plan
    that keeps every serving child, a ``Ready=False`` status and a Warning.
    A DISVC being deleted gets an empty plan and its status unchanged: the
    garbage collector removes the children.
    """
    previous = disvc.get("status")
    previous_status: Mapping[str, Any] = previous if isinstance(previous, Mapping) else {}
    if ownership.is_terminating(disvc):
        return Desired(plan=Plan(), status=dict(previous_status))
    try:
        spec = disvc_spec.parse(disvc)
        want = _converge(spec, previous_status, live, options)
    except InvalidSpec as problem:
        return _invalid(disvc, previous_status, live, problem, options)
    if want.plan.conflicts:
        # Our watches see only labelled objects, so nothing tells us when a
        # foreign object gives a name back: look again on our own.
        want = replace(want, recheck_after=CONFLICT_RECHECK_SECONDS)
    if want.plan.is_empty:
        return want
    settled = _converge(spec, want.status, _after_plan(live, want.plan), options)
    if settled.plan.is_empty:
        # Report the world this plan leaves behind, not the one it starts
        # from: one status write per change suffices.
        return replace(want, status=settled.status)
    # Another step follows once these writes land (a switch after the
    # successor's Service appears, a removal after the switch). The status
    # keeps to what this plan writes, and the next step must not wait for the
    # watch to echo our own writes back: come back at once.
    return replace(want, recheck_after=0.0)


def rejected(disvc: Obj, want: Desired, refusal: str, options: BuildOptions) -> Desired:
    """``want`` after the API refused one of its writes for good (an admission
    webhook, a schema): its status with ``Ready=False`` reason ``ChildRejected``
    naming the refusal, ``Progressing=False`` with the same reason (nothing is
    under way: the controller does not retry the write), and a Warning when
    that is news. A change to the DISVC (a watch event) starts over."""
    previous = disvc.get("status")
    previous_status: Mapping[str, Any] = previous if isinstance(previous, Mapping) else {}
    ready = Condition("Ready", False, "ChildRejected", refusal)
    stalled = Condition(
        "Progressing", False, "ChildRejected", "Stopped: the API refused a child (see Ready); fix the spec"
    )
    warning = events.warning_event(ready, previous_status)
    return Desired(
        plan=want.plan,
        status=status.with_conditions(want.status, (ready, stalled), previous_status, options.now),
        events=(warning,) if warning is not None else (),
    )


def _after_plan(live: Sequence[Obj], plan: Plan) -> list[Obj]:
    """``live`` as it will be once ``plan`` is written: deleted children gone,
    created ones present without status, updated ones keeping their status."""
    gone = {(ref.kind, ref.name) for ref in plan.delete}
    written = {diff.child_id(obj): obj for obj in (*plan.create, *plan.update)}
    after: list[Obj] = []
    for obj in live:
        child = diff.child_id(obj)
        if child in gone:
            continue
        new = written.pop(child, None)
        if new is None:
            after.append(obj)
        elif "status" in obj:
            after.append({**new, "status": obj["status"]})
        else:
            after.append(new)
    after.extend(written.values())
    return after


@dataclass(frozen=True, slots=True)
class _Route:
    """Where traffic goes in this plan and what stays untouched."""

    serving: int
    """Generation the Ingress and ``status.address`` point at."""
    keep: frozenset[ChildId]
    with_ingress: bool
    protocol: ServingProtocol
    """How the Ingress and the top-level Service reach ``serving``: a rollout
    that changes the protocol changes them only when traffic switches."""


def _converge(
    spec: DisvcSpec, previous_status: Mapping[str, Any], live: Sequence[Obj], options: BuildOptions
) -> Desired:
    template_hash = isvc.template_hash(spec)
    generations = generation.live_generations(spec.name, spec.uid, live)
    rollout = generation.rollout(
        previous_status.get("activeGeneration"), template_hash, generations
    )
    target = rollout.target
    _check_name_lengths(spec, target)
    serving_protocol = protocol.of(spec.template)
    url = ingress.url(spec, options.ingress_domain) if spec.ingress.enabled else None

    built = _generation_children(spec, target, template_hash, serving_protocol)

    target_generation = generations.get(target)
    switch = (
        rollout.is_rolling_out
        and target_generation is not None
        and target_generation.has_service
        and target_generation.is_complete(spec.replicas)
    )
    route = _route(spec, rollout, switch, generations, serving_protocol)
    plan = _plan(spec, built, route, live, options)
    if switch and plan.conflicts:
        # a name clash may mean the new generation is not really ours to route to
        switch = False
        route = _route(spec, rollout, switch, generations, serving_protocol)
        plan = _plan(spec, built, route, live, options)
    conflict_ids = {diff.child_id(obj) for obj in plan.conflicts}
    routed_service: ChildId = ("Service", names.generation_name(spec.name, route.serving))
    if route.with_ingress and routed_service in conflict_ids:
        # never point our Ingress at someone else's Service
        keep_ingress: ChildId = ("Ingress", names.ingress_name(spec.name))
        route = replace(route, keep=route.keep | {keep_ingress}, with_ingress=False)
        plan = _plan(spec, built, route, live, options)

    active = generations.get(route.serving)
    ready = _ready_condition(spec, rollout, switch, route.serving, active, plan)
    progressing = _progressing_condition(spec, rollout, switch, target_generation)
    observed = status.Observed(
        observed_generation=spec.generation,
        disvc_name=spec.name,
        namespace=spec.namespace,
        active_generation=route.serving,
        replicas=len(active.isvcs) if active else 0,
        ready_replicas=active.ready_count() if active else 0,
        # someone else's Ingress under our name does not serve our URL
        url=None if ("Ingress", names.ingress_name(spec.name)) in conflict_ids else url,
        conditions=(ready, progressing),
    )
    emitted = events.plan_events(
        plan,
        spec.name,
        rollout,
        switch,
        spec.replicas,
        len(target_generation.isvcs) if target_generation else 0,
        target_generation is not None,
    )
    warning = events.warning_event(ready, previous_status)
    if warning is not None:
        emitted.insert(0, warning)
    return Desired(
        plan=plan,
        status=status.status(observed, previous_status, options.now),
        events=tuple(emitted),
    )


def children(disvc: Obj, generation_number: int, options: BuildOptions) -> list[Obj]:
    """Every child of ``disvc`` in the steady state at ``generation_number``,
    as ``state`` would build it with nothing live (``disvc render`` prints these).

    Raises ``InvalidSpec``: unlike ``state`` this has nobody to report to."""
    spec = disvc_spec.parse(disvc)
    _check_name_lengths(spec, generation_number)
    serving_protocol = protocol.of(spec.template)
    objects = _generation_children(
        spec, generation_number, isvc.template_hash(spec), serving_protocol
    )
    objects.append(diff.applied(service.top_service(spec, serving_protocol)))
    if spec.ingress.enabled:
        objects.append(_ingress(spec, generation_number, serving_protocol, options))
    return objects


def _generation_children(
    spec: DisvcSpec, number: int, template_hash: str, serving_protocol: protocol.ServingProtocol
) -> list[Obj]:
    """Generation ``number``'s ISVCs, then its Service: creation order, so every
    Service has something to select when it appears (the top-level Service and
    the Ingress follow, built for the generation they route to)."""
    body = isvc.isvc_spec(spec)
    objects = [
        diff.applied(isvc.isvc(spec, number, index, body, template_hash))
        for index in range(spec.replicas)
    ]
    objects.append(
        diff.applied(service.generation_service(spec, number, serving_protocol, template_hash))
    )
    return objects


def _ingress(
    spec: DisvcSpec, number: int, serving_protocol: protocol.ServingProtocol, options: BuildOptions
) -> Obj:
    return diff.applied(
        ingress.ingress(
            spec, number, serving_protocol, options.ingress_domain, options.ingress_class
        )
    )


def _check_name_lengths(spec: DisvcSpec, target: int) -> None:
    longest = (
        names.isvc_name(spec.name, target, spec.replicas - 1)
        if spec.replicas
        else names.generation_name(spec.name, target)
    )
    if len(longest) > names.MAX_NAME_LENGTH:
        raise InvalidSpec(
            "spec.replicas",
            f"child name {longest!r} would exceed {names.MAX_NAME_LENGTH} characters; "
            "use fewer replicas or a shorter name",
        )


def _route(
    spec: DisvcSpec,
    rollout: Rollout,
    switch: bool,
    generations: Mapping[int, LiveGeneration],
    target_protocol: ServingProtocol,
) -> _Route:
    if not rollout.is_rolling_out or switch or rollout.serving is None:
        return _Route(rollout.target, frozenset(), spec.ingress.enabled, target_protocol)
    # the serving generation's template is gone from the spec: keep its
    # children exactly as they are until the target is Ready
    serving = generations[rollout.serving]
    keep: set[ChildId] = {
        ("InferenceService", names.isvc_name(spec.name, rollout.serving, index))
        for index in serving.isvcs
    }
    keep.add(("Service", names.generation_name(spec.name, rollout.serving)))
    return _Route(
        rollout.serving,
        frozenset(keep),
        spec.ingress.enabled,
        serving.protocol or target_protocol,
    )


def _plan(
    spec: DisvcSpec,
    built: list[Obj],
    route: _Route,
    live: Sequence[Obj],
    options: BuildOptions,
) -> Plan:
    desired = [*built, diff.applied(service.top_service(spec, route.protocol))]
    if route.with_ingress:
        desired.append(_ingress(spec, route.serving, route.protocol, options))
    return diff.plan(desired, live, spec.uid, route.keep)


def _ready_condition(
    spec: DisvcSpec,
    rollout: Rollout,
    switch: bool,
    active_number: int,
    active: LiveGeneration | None,
    plan: Plan,
) -> Condition:
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
    if rollout.is_rolling_out and not switch:
        total = len(active.isvcs) if active else 0
        ready = active.ready_count() if active else 0
        ok = ready == total
        message = (
            f"{ready}/{total} replicas of serving generation "
            f"{names.generation_label(active_number)} ready"
        )
    else:
        wanted = range(spec.replicas)
        ready = active.ready_count(wanted) if active else 0
        ok = ready == spec.replicas
        message = f"{ready}/{spec.replicas} replicas ready"
    return Condition(
        "Ready", ok, "AllReplicasReady" if ok else "ReplicasNotReady", message
    )


def _progressing_condition(
    spec: DisvcSpec, rollout: Rollout, switch: bool, target: LiveGeneration | None
) -> Condition:
    label = names.generation_label(rollout.target)
    if rollout.is_rolling_out and not switch:
        ready = target.ready_count(range(spec.replicas)) if target else 0
        return Condition(
            "Progressing",
            True,
            "RollingOut",
            f"Rolling out generation {label}: {ready}/{spec.replicas} replicas ready",
        )
    live_indices = set(target.isvcs) if target else set()
    ready = target.ready_count(range(spec.replicas)) if target else 0
    if live_indices != set(range(spec.replicas)) or ready < spec.replicas:
        # Under way until every wanted replica exists and is Ready, as a
        # Deployment keeps Progressing until its new Pods are available.
        return Condition(
            "Progressing",
            True,
            "Scaling",
            f"Scaling generation {label} to {_count(spec.replicas)}: {ready}/{spec.replicas} ready",
        )
    return Condition(
        "Progressing", False, "Converged", f"Generation {label} has {_count(spec.replicas)}"
    )


def _invalid(
    disvc: Obj,
    previous_status: Mapping[str, Any],
    live: Sequence[Obj],
    problem: InvalidSpec,
    options: BuildOptions,
) -> Desired:
    """Report the problem; keep every child (serving ones keep serving)."""
    meta = disvc.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = disvc_spec.metadata_name(disvc)
    uid = meta.get("uid")
    generations = (
        generation.live_generations(name, uid, live) if name and isinstance(uid, str) else {}
    )
    serving = generation.serving(previous_status.get("activeGeneration"), generations)
    active = generations.get(serving) if serving is not None else None
    observed_generation = meta.get("generation")
    kept_url = previous_status.get("url")
    ready = Condition("Ready", False, "InvalidSpec", str(problem))
    observed = status.Observed(
        observed_generation=observed_generation if isinstance(observed_generation, int) else 0,
        disvc_name=name,
        namespace=str(meta.get("namespace", "")),
        active_generation=serving,
        replicas=len(active.isvcs) if active else 0,
        ready_replicas=active.ready_count() if active else 0,
        url=None,
        conditions=(
            ready,
            Condition(
                "Progressing", False, "InvalidSpec", "Nothing changes until the spec is fixed"
            ),
        ),
        kept_url=kept_url if isinstance(kept_url, str) else None,
    )
    warning = events.warning_event(ready, previous_status)
    return Desired(
        plan=Plan(),
        status=status.status(observed, previous_status, options.now),
        events=(warning,) if warning is not None else (),
    )


def _count(replicas: int) -> str:
    return f"{replicas} replica" if replicas == 1 else f"{replicas} replicas"
