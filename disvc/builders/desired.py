"""The single entry point of the builders: DISVC + live children -> what to do.

Shared by the reconciler and by ``disvc render``. ``state`` reads the spec
(``spec``), works out which generation serves and which one the spec asks
for (``generation``), asks the rollout strategy ``spec.rollout`` chooses
(``strategies``) for the next step, builds that step's children (``isvc``,
``service``, ``ingress`` or ``httproute``), diffs them against the live ones
(``diff``) and derives the status (``status``, ``history``, ``deadline``)
and the Events (``events``). It is a pure function of its arguments, so the
same world always gives the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from disvc.builders import (
    deadline,
    diff,
    events,
    generation,
    history,
    httproute,
    ingress,
    isvc,
    names,
    ownership,
    protocol,
    service,
    status,
    strategies,
)
from disvc.builders import (
    spec as disvc_spec,
)
from disvc.builders.diff import ChildId, Plan
from disvc.builders.generation import LiveGeneration, Rollout
from disvc.builders.spec import DisvcSpec, InvalidSpec
from disvc.builders.strategies.base import Situation, Step, Traffic
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
    gateway_api: bool = False
    """The controller watches Gateway API HTTPRoutes (``--gateway-api``):
    only then may a DISVC name a Gateway."""
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
        return _converge(spec, previous_status, live, options)
    except InvalidSpec as problem:
        return _invalid(disvc, previous_status, live, problem, options)


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
class _Decision:
    """One strategy step turned into writes."""

    situation: Situation
    step: Step
    plan: Plan
    template_hash: str
    routed: bool
    """False when the Ingresses are left as they are (a routed Service's name
    is held by a foreign object: never point our Ingress at it)."""


def _decide(
    spec: DisvcSpec, previous_status: Mapping[str, Any], live: Sequence[Obj], options: BuildOptions
) -> _Decision:
    if spec.ingress.gateway is not None and not options.gateway_api:
        raise InvalidSpec(
            "spec.ingress.gateway",
            "this controller runs without --gateway-api (the Gateway API CRDs may not be "
            "installed); enable it or remove the field",
        )
    template_hash = isvc.template_hash(spec)
    generations = generation.live_generations(spec.name, spec.uid, live)
    serving = generation.serving(previous_status.get("activeGeneration"), generations)
    target = generation.target(template_hash, serving, generations)
    _check_name_lengths(spec, target)
    strategy = strategies.for_spec(spec.rollout)
    situation = Situation(spec, generations, serving, target)
    step = strategy.step(situation)
    plan = _plan(spec, situation, step, template_hash, live, options, routed=True)
    if situation.is_rolling_out and plan.conflicts:
        # a name clash may mean the new generation is not really ours to route to
        situation = replace(situation, may_switch=False)
        step = strategy.step(situation)
        plan = _plan(spec, situation, step, template_hash, live, options, routed=True)
    conflict_ids = {diff.child_id(obj) for obj in plan.conflicts}
    routed = not (_routed_services(spec, step.traffic) & conflict_ids)
    if not routed:
        plan = _plan(spec, situation, step, template_hash, live, options, routed=False)
    return _Decision(situation, step, plan, template_hash, routed)


def _converge(
    spec: DisvcSpec, previous_status: Mapping[str, Any], live: Sequence[Obj], options: BuildOptions
) -> Desired:
    decision = _decide(spec, previous_status, live, options)
    situation, step, plan = decision.situation, decision.step, decision.plan
    target = situation.target
    # Report the world this plan leaves behind, not the one it starts from:
    # the reconcile that the plan's own watch events trigger then finds the
    # status already written, and one status write per change suffices. The
    # step (what serves, where traffic goes) is this plan's, never a later one's.
    after = _after_plan(live, plan) if not plan.is_empty else list(live)
    after_generations = generation.live_generations(spec.name, spec.uid, after)
    conflict_ids = {diff.child_id(obj) for obj in plan.conflicts}

    waiting = _waiting(spec, situation, step)
    verdict = deadline.judge(waiting, spec.rollout.progress_deadline_seconds, options.now)
    ready = _ready_condition(spec, situation, step, after_generations, plan)
    progressing = _progressing_condition(spec, situation, step, after_generations, verdict)
    counted = _traffic_generations(step, after_generations)
    url = ingress.url(spec, options.ingress_domain) if spec.ingress.enabled else None
    active_hash = (
        decision.template_hash
        if step.active == target
        else _only(situation.generations[step.active].template_hashes)
        if step.active in situation.generations
        else None
    )
    observed = status.Observed(
        observed_generation=spec.generation,
        disvc_name=spec.name,
        namespace=spec.namespace,
        active_generation=step.active,
        replicas=sum(len(g.isvcs) for g in counted),
        ready_replicas=sum(g.ready_count() for g in counted),
        # someone else's Ingress (or HTTPRoute) under our name does not serve our URL
        url=None
        if {("Ingress", names.ingress_name(spec.name)), ("HTTPRoute", names.route_name(spec.name))}
        & conflict_ids
        else url,
        conditions=(ready, progressing),
        generations=_generation_counts(step, after_generations)
        if len(after_generations) > 1 or step.traffic.canary is not None
        else (),
        history=history.record(
            previous_status,
            step.active,
            active_hash,
            history.template_record(spec) if step.active == target else None,
            options.now,
        ),
    )
    target_generation = situation.generations.get(target)
    emitted = events.plan_events(
        plan,
        spec.name,
        Rollout(situation.serving, target),
        situation.is_rolling_out and step.active == target,
        spec.replicas,
        len(target_generation.isvcs) if target_generation else 0,
        target_generation is not None,
    )
    warnings = [
        warning
        for warning in (
            events.warning_event(ready, previous_status),
            events.deadline_event(progressing, previous_status),
        )
        if warning is not None
    ]
    written = status.status(observed, previous_status, options.now)
    recheck = _recheck(spec, plan, after, written, verdict, options)
    return Desired(
        plan=plan,
        status=written,
        events=(*warnings, *emitted),
        recheck_after=recheck,
    )


def _recheck(
    spec: DisvcSpec,
    plan: Plan,
    after: Sequence[Obj],
    written: Obj,
    verdict: deadline.Verdict,
    options: BuildOptions,
) -> float | None:
    """When to reconcile again without a watch event: the earliest of the
    next progress deadline, the conflict recheck, and at once."""
    rechecks = [verdict.recheck_after]
    if plan.conflicts:
        # Our watches see only labelled objects, so nothing tells us when a
        # foreign object gives a name back: look again on our own.
        rechecks.append(CONFLICT_RECHECK_SECONDS)
    if not plan.is_empty and not _decide(spec, written, after, options).plan.is_empty:
        # Another step follows once these writes land (a switch after the
        # successor's Service appears, a removal after the switch, a rolling
        # step's creates after its deletes). The step must not wait for the
        # watch to echo our own writes back: come back at once.
        rechecks.append(0.0)
    known = [seconds for seconds in rechecks if seconds is not None]
    return min(known) if known else None


def _only(values: set[str]) -> str | None:
    return next(iter(values)) if len(values) == 1 else None


def _waiting(spec: DisvcSpec, situation: Situation, step: Step) -> list[Obj]:
    """Live ISVCs of the target generation this step needs Ready."""
    target = situation.generations.get(situation.target)
    if target is None:
        return []
    wanted = step.isvcs.get(situation.target, frozenset())
    return [obj for index, obj in sorted(target.isvcs.items()) if index in wanted and index < spec.replicas]


def _traffic_generations(
    step: Step, after: Mapping[int, LiveGeneration]
) -> list[LiveGeneration]:
    """The generations ``status.replicas`` counts: those external traffic reaches
    through the primary route (all of them while a rolling rollout runs)."""
    if step.traffic.primary is None:
        return [after[n] for n in sorted(after)]
    primary = after.get(step.traffic.primary)
    return [primary] if primary is not None else []


def _generation_counts(
    step: Step, after: Mapping[int, LiveGeneration]
) -> tuple[status.GenerationCount, ...]:
    traffic = step.traffic
    shares: dict[int, int] = {}
    if traffic.primary is not None:
        shares[traffic.primary] = 100 - (traffic.canary_percent if traffic.canary is not None else 0)
        if traffic.canary is not None:
            shares[traffic.canary] = traffic.canary_percent
    else:
        ready = {n: gen.ready_count() for n, gen in after.items() if gen.ready_count()}
        total = sum(ready.values())
        for n in sorted(ready):
            shares[n] = ready[n] * 100 // total
        if ready:
            # rounding leftovers go to the newest generation, so the shares sum to 100
            shares[max(ready)] += 100 - sum(shares.values())
    return tuple(
        status.GenerationCount(
            number=n,
            replicas=len(after[n].isvcs),
            ready_replicas=after[n].ready_count(),
            traffic_percent=shares.get(n),
        )
        for n in sorted(after)
    )


def children(disvc: Obj, generation_number: int, options: BuildOptions) -> list[Obj]:
    """Every child of ``disvc`` in the steady state at ``generation_number``,
    as ``state`` would build it with nothing live (``disvc render`` prints these).

    Raises ``InvalidSpec``: unlike ``state`` this has nobody to report to."""
    spec = disvc_spec.parse(disvc)
    _check_name_lengths(spec, generation_number)
    serving_protocol = protocol.of(spec.template)
    objects = _generation_children(
        spec, generation_number, isvc.template_hash(spec), serving_protocol, range(spec.replicas)
    )
    objects.append(diff.applied(service.top_service(spec, serving_protocol)))
    backend = names.generation_name(spec.name, generation_number)
    if spec.ingress.enabled and spec.ingress.gateway is not None:
        objects.append(
            diff.applied(httproute.http_route(spec, [(backend, None)], options.ingress_domain))
        )
    elif spec.ingress.enabled:
        objects.append(_ingress(spec, backend, serving_protocol, options))
    return objects


def _generation_children(
    spec: DisvcSpec,
    number: int,
    template_hash: str,
    serving_protocol: protocol.ServingProtocol,
    indices: Sequence[int],
    with_service: bool = True,
) -> list[Obj]:
    """Generation ``number``'s ISVCs, then its Service: creation order, so every
    Service has something to select when it appears (the top-level Service and
    the Ingress follow, built for the generation they route to)."""
    body = isvc.isvc_spec(spec)
    objects = [
        diff.applied(isvc.isvc(spec, number, index, body, template_hash)) for index in indices
    ]
    if with_service:
        objects.append(
            diff.applied(service.generation_service(spec, number, serving_protocol, template_hash))
        )
    return objects


def _ingress(
    spec: DisvcSpec,
    backend: str,
    serving_protocol: protocol.ServingProtocol,
    options: BuildOptions,
    canary_weight: int | None = None,
) -> Obj:
    return diff.applied(
        ingress.ingress(
            spec,
            backend,
            serving_protocol,
            options.ingress_domain,
            options.ingress_class,
            canary_weight,
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


def _routed_services(spec: DisvcSpec, traffic: Traffic) -> set[ChildId | None]:
    routed: set[ChildId | None] = {("Service", _backend(spec, traffic.primary))}
    if traffic.canary is not None:
        routed.add(("Service", names.generation_name(spec.name, traffic.canary)))
    return routed


def _weighted(spec: DisvcSpec, traffic: Traffic) -> list[tuple[str, int | None]]:
    """The HTTPRoute's backendRefs: one Service, or the canary split by weight."""
    primary = _backend(spec, traffic.primary)
    if traffic.canary is None:
        return [(primary, None)]
    return [
        (primary, 100 - traffic.canary_percent),
        (names.generation_name(spec.name, traffic.canary), traffic.canary_percent),
    ]


def _backend(spec: DisvcSpec, generation_number: int | None) -> str:
    if generation_number is None:
        return names.top_service_name(spec.name)
    return names.generation_name(spec.name, generation_number)


def _plan(
    spec: DisvcSpec,
    situation: Situation,
    step: Step,
    template_hash: str,
    live: Sequence[Obj],
    options: BuildOptions,
    routed: bool,
) -> Plan:
    target = situation.target
    target_protocol = protocol.of(spec.template)
    serving_generation = situation.generations.get(step.active)
    # while another generation serves, the Ingress and the top-level Service
    # keep its protocol: a rollout that changes it changes them at the switch
    route_protocol = (
        serving_generation.protocol or target_protocol
        if step.active != target and serving_generation is not None
        else target_protocol
    )
    desired = _generation_children(
        spec,
        target,
        template_hash,
        target_protocol,
        sorted(step.isvcs.get(target, frozenset())),
        with_service=target in step.services,
    )
    keep: set[ChildId] = set()
    for number, indices in step.isvcs.items():
        if number != target:
            keep.update(
                ("InferenceService", names.isvc_name(spec.name, number, index)) for index in indices
            )
    keep.update(
        ("Service", names.generation_name(spec.name, number))
        for number in step.services
        if number != target
    )
    desired.append(diff.applied(service.top_service(spec, route_protocol)))
    if not routed:
        keep.add(("Ingress", names.ingress_name(spec.name)))
        keep.add(("Ingress", names.canary_ingress_name(spec.name)))
        keep.add(("HTTPRoute", names.route_name(spec.name)))
    elif spec.ingress.enabled and spec.ingress.gateway is not None:
        desired.append(diff.applied(httproute.http_route(spec, _weighted(spec, step.traffic), options.ingress_domain)))
    elif spec.ingress.enabled:
        desired.append(_ingress(spec, _backend(spec, step.traffic.primary), route_protocol, options))
        if step.traffic.canary is not None:
            desired.append(
                _ingress(
                    spec,
                    names.generation_name(spec.name, step.traffic.canary),
                    target_protocol,
                    options,
                    canary_weight=step.traffic.canary_percent,
                )
            )
    return diff.plan(desired, live, spec.uid, keep)


def _ready_condition(
    spec: DisvcSpec,
    situation: Situation,
    step: Step,
    after: Mapping[int, LiveGeneration],
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
    active = after.get(step.active)
    if step.traffic.primary is None:
        ready = sum(gen.ready_count() for gen in after.values())
        needed = spec.replicas - spec.rollout.unavailable(spec.replicas)
        ok = ready >= needed
        labels = ", ".join(names.generation_label(n) for n in sorted(after))
        message = (
            f"{ready}/{spec.replicas} replicas ready across generations {labels} "
            f"(at least {needed} while rolling)"
        )
    elif step.active != situation.target:
        total = len(active.isvcs) if active else 0
        ready = active.ready_count() if active else 0
        ok = ready == total
        message = (
            f"{ready}/{total} replicas of serving generation "
            f"{names.generation_label(step.active)} ready"
        )
    else:
        ready = active.ready_count(range(spec.replicas)) if active else 0
        ok = ready == spec.replicas
        message = f"{ready}/{spec.replicas} replicas ready"
    return Condition(
        "Ready", ok, "AllReplicasReady" if ok else "ReplicasNotReady", message
    )


def _progressing_condition(
    spec: DisvcSpec,
    situation: Situation,
    step: Step,
    after: Mapping[int, LiveGeneration],
    verdict: deadline.Verdict,
) -> Condition:
    label = names.generation_label(situation.target)
    target = after.get(situation.target)
    ready = target.ready_count(range(spec.replicas)) if target else 0
    if verdict.overdue:
        return Condition(
            "Progressing",
            False,
            "ProgressDeadlineExceeded",
            deadline.message(label, spec.rollout.progress_deadline_seconds, verdict.overdue),
        )
    if step.traffic.canary is not None:
        return Condition(
            "Progressing",
            True,
            "CanaryRunning",
            f"Canary generation {label} takes {step.traffic.canary_percent}% of external "
            "traffic; promote it by removing spec.rollout.canaryTrafficPercent or setting it "
            "to 100, or roll back by restoring the previous template",
        )
    others = [n for n in sorted(after) if n != situation.target and after[n].isvcs]
    if step.active != situation.target or others:
        message = f"Rolling out generation {label}: {ready}/{spec.replicas} replicas ready"
        if others:
            left = ", ".join(
                f"{names.generation_label(n)} has {_count(len(after[n].isvcs))}" for n in others
            )
            message += f"; {left}"
        return Condition("Progressing", True, "RollingOut", message)
    live_indices = set(target.isvcs) if target else set()
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
        history=tuple(history.entries(previous_status)),
    )
    warning = events.warning_event(ready, previous_status)
    return Desired(
        plan=Plan(),
        status=status.status(observed, previous_status, options.now),
        events=(warning,) if warning is not None else (),
    )


def _count(replicas: int) -> str:
    return f"{replicas} replica" if replicas == 1 else f"{replicas} replicas"
