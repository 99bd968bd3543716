"""The single entry point of the builders: DISVC + live children -> what to do.

Shared by the reconciler and by ``disvc render``. ``state`` reads the spec
(``spec``), works out which generation serves and which one the spec asks
for (``generation``), asks the rollout strategy ``spec.rollout`` chooses
(``strategies``) for the next step, turns that step into a plan
(``children``, which builds with ``isvc``, ``service`` and ``routes`` and
diffs with ``diff``), and reports the world the plan leaves behind: the
conditions (``conditions``, ``deadline``), the status (``status``,
``history``), the Events (``events``) and when to look again. An invalid
spec or a refused write is reported instead (``rejected``). It is a pure
function of its arguments, so the same world always gives the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from disvc.builders import (
    affinity,
    analysis,
    conditions,
    deadline,
    diff,
    events,
    generation,
    history,
    isvc,
    knative,
    mode,
    ownership,
    routes,
    routestatus,
    scaledown,
    status,
    strategies,
)
from disvc.builders import (
    spec as disvc_spec,
)
from disvc.builders.children import check_name_lengths, routed_protocol, steady_children, step_plan
from disvc.builders.diff import Plan
from disvc.builders.generation import Rollout
from disvc.builders.routes import Routing
from disvc.builders.spec import DisvcSpec, GatewayRef, InvalidSpec
from disvc.builders.strategies.base import Situation, Step, Strategy
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
    """The controller serves Gateway API routes: the HTTPRoute CRD is
    installed and ``--gateway-api=false`` did not turn them off. Only then
    may a DISVC route through a Gateway."""
    grpc_route: bool = False
    """The GRPCRoute CRD is installed too: gRPC models get a GRPCRoute."""
    session_persistence: frozenset[str] = frozenset()
    """Route kinds whose installed CRD serves ``sessionPersistence``."""
    default_gateway: GatewayRef | None = None
    """``--default-gateway``: the Gateway of DISVCs that name none."""
    default_deployment_mode: mode.Mode | None = None
    """KServe deployment mode stamped on the ISVCs of a DISVC that names none
    (``--default-deployment-mode``); None leaves the choice to KServe."""
    now: str = "1970-01-01T00:00:00Z"
    """RFC 3339 time stamped on conditions whose status changes (builders read no clock)."""
    measured: analysis.Measured | None = None
    """The canary analysis's queries as the controller measured them at ``now``
    (set only on the second build of a reconcile that ``Desired.queries`` asked for)."""


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
    queries: tuple[analysis.Query, ...] = field(default=())
    """A canary analysis's measurement is due: measure these and build again
    with ``BuildOptions.measured`` (the plan and status here do not count it yet)."""


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
        spec = mode.with_default(disvc_spec.parse(disvc), options.default_deployment_mode)
        return _converge(spec, previous_status, live, options)
    except InvalidSpec as problem:
        return _invalid(disvc, previous_status, live, problem, options)


def rejected(disvc: Obj, want: Desired, refusal: str, options: BuildOptions) -> Desired:
    """``want`` after the API refused one of its writes (an admission webhook,
    a schema, a quota): ``Ready=False`` and ``Progressing=False``, reason
    ``ChildRejected`` naming the refusal, and a Warning when that is news.

    The status is the one last written (what the world was known to be),
    not ``want``'s: that describes the world once the whole plan is written,
    and part of it was not (a switch whose route was refused must not report
    the new ``activeGeneration`` or ``address``). Only ``observedGeneration``
    and the two conditions change. The reconciler retries the refused write
    with backoff, so a fixed quota or webhook is picked up without a change
    to the DISVC."""
    previous = disvc.get("status")
    previous_status: Mapping[str, Any] = previous if isinstance(previous, Mapping) else {}
    ready, stalled = conditions.rejected(refusal)
    warning = events.warning_event(ready, previous_status)
    meta = disvc.get("metadata")
    generation_seen = meta.get("generation") if isinstance(meta, Mapping) else None
    known: Obj = dict(previous_status)
    if isinstance(generation_seen, int):
        known["observedGeneration"] = generation_seen
    return Desired(
        plan=want.plan,
        status=status.with_conditions(known, (ready, stalled), previous_status, options.now),
        events=(warning,) if warning is not None else (),
    )


def children(disvc: Obj, generation_number: int, options: BuildOptions) -> list[Obj]:
    """Every child of ``disvc`` in the steady state at ``generation_number``,
    as ``state`` would build it with nothing live (``disvc render`` prints these).

    Raises ``InvalidSpec``: unlike ``state`` this has nobody to report to."""
    spec = mode.with_default(disvc_spec.parse(disvc), options.default_deployment_mode)
    built_mode = mode.requested(spec) or mode.ASSUMED
    _check_mode(spec, built_mode)
    return steady_children(spec, generation_number, routing(spec, options), built_mode)


def routing(spec: DisvcSpec, options: BuildOptions) -> Routing:
    """How ``spec``'s routes are built under ``options``."""
    return Routing(
        domain=options.ingress_domain,
        default_class=options.ingress_class,
        gateway=routes.gateway_for(spec, options.default_gateway, options.gateway_api),
        grpc_route=options.grpc_route,
        persistence=options.session_persistence,
    )


def _check_mode(spec: DisvcSpec, built_mode: mode.Mode) -> None:
    """Refuse what Knative mode cannot keep (see ``knative``)."""
    if built_mode == mode.KNATIVE:
        knative.check_name(spec.name)
        knative.check_min_replicas(spec)


@dataclass(frozen=True, slots=True)
class _Decision:
    """One strategy step turned into writes."""

    situation: Situation
    step: Step
    plan: Plan
    template_hash: str
    routed: bool
    """False when the routes are left as they are (a routed Service's name
    is held by a foreign object: never point our route at it)."""
    leaving: Mapping[int, scaledown.Leaving]
    """Generations traffic has left (before or in this step) that the step
    keeps up for the scale-down delay; the strategy never saw them."""
    reverted: scaledown.Leaving | None
    """The target, when a revert picked it up during its delay and this step
    keeps ISVCs of it that the strategy would have deleted (see ``_step``)."""
    mode_problem: tuple[str, str] | None = None
    """(reason, message) when the target generation's ISVCs are not in the
    mode asked for (``mode.problem``)."""
    target_mode: mode.Mode = mode.ASSUMED
    """The mode the target generation is built in (``mode.of_generation``)."""
    analysed: analysis.Progress | None = None
    """Where a canary under automated analysis stands (None: no such canary)."""


def _decide(
    spec: DisvcSpec, previous_status: Mapping[str, Any], live: Sequence[Obj], options: BuildOptions
) -> _Decision:
    if spec.ingress.gateway is not None and not options.gateway_api:
        raise InvalidSpec(
            "spec.ingress.gateway",
            "Gateway API is not served here (no HTTPRoute CRD on the cluster, or the controller "
            "runs with --gateway-api=false); install the Gateway API CRDs or remove the field",
        )
    # the ControllerRevisions are history's (``_converge``), not the step's
    live = [obj for obj in live if not history.is_revision(obj)]
    template_hash = isvc.template_hash(spec)
    generations = generation.live_generations(spec.name, spec.uid, live)
    delay = spec.rollout.scale_down_delay_seconds
    leaving = scaledown.leaving(previous_status, generations, delay, options.now)
    # a generation traffic has left never serves again by default...
    serving = generation.serving(
        previous_status.get("activeGeneration"),
        {n: gen for n, gen in generations.items() if n not in leaving},
    )
    # ...but a revert to its template picks it up again (it is whole and was
    # Ready a moment ago), and a new generation is numbered above it
    target = generation.target(template_hash, serving, generations)
    reverted = leaving.pop(target, None)
    check_name_lengths(spec, target)
    requested = mode.requested(spec)
    target_isvcs = generations[target].isvcs if target in generations else {}
    target_mode = mode.of_generation(requested, target_isvcs.values())
    _check_mode(spec, target_mode)
    mode_problem = mode.problem(requested, mode.generation_isvcs(spec.name, target_isvcs, target))
    strategy = strategies.for_spec(spec.rollout)
    canary = generations.get(target)
    analysed = analysis.progress(
        spec,
        previous_status,
        serving,
        target,
        template_hash,
        canary is not None and canary.has_service and canary.is_complete(spec.replicas),
        options.now,
        options.measured,
    )
    situation = Situation(
        spec,
        {n: gen for n, gen in generations.items() if n not in leaving},
        serving,
        target,
        held_isvcs=sum(len(generations[n].isvcs) for n in leaving),
        gate=analysed.gate if analysed is not None else None,
    )
    step, kept, held = _step(strategy, situation, generations, leaving, reverted, options)
    plan = _step_plan(spec, situation, step, template_hash, live, options, routed=True, target_mode=target_mode)
    if situation.is_rolling_out and plan.conflicts:
        # a name clash may mean the new generation is not really ours to route to
        situation = replace(situation, may_switch=False)
        step, kept, held = _step(strategy, situation, generations, leaving, reverted, options)
        plan = _step_plan(spec, situation, step, template_hash, live, options, routed=True, target_mode=target_mode)
    conflict_ids = {diff.child_id(obj) for obj in plan.conflicts}
    routed = not (routes.routed_services(spec, step.traffic) & conflict_ids)
    if not routed:
        plan = _step_plan(spec, situation, step, template_hash, live, options, routed=False, target_mode=target_mode)
    return _Decision(
        situation,
        step,
        plan,
        template_hash,
        routed,
        kept,
        held,
        mode_problem=mode_problem,
        analysed=analysed,
        target_mode=target_mode,
    )


def _step(
    strategy: Strategy,
    situation: Situation,
    generations: Mapping[int, generation.LiveGeneration],
    leaving: Mapping[int, scaledown.Leaving],
    reverted: scaledown.Leaving | None,
    options: BuildOptions,
) -> tuple[Step, dict[int, scaledown.Leaving], scaledown.Leaving | None]:
    """The strategy's step with the generations traffic has left kept up:
    those it left earlier, and the one it leaves in this step.

    ``reverted`` is the target when a revert picked it up during its delay:
    it is the strategy's again, but until traffic is back on it (the step
    makes it active) routers that have not yet moved off it still send it
    requests, so it loses none of its live ISVCs before its delay ends (a
    blue/green hold would trim it to ``replicas`` at once). The third value
    is ``reverted`` when that kept something, so the caller comes back when
    the delay ends."""
    step = strategy.step(situation)
    held = None
    if reverted is not None and step.active != situation.target:
        kept_up = scaledown.keep(step, {reverted.number: reverted}, generations)
        if kept_up != step:
            step, held = kept_up, reverted
    kept = dict(leaving)
    serving = situation.serving
    if serving is not None and step.active != serving:
        starting = scaledown.starting(
            serving, situation.spec.rollout.scale_down_delay_seconds, options.now
        )
        if starting is not None:
            kept[serving] = starting
            if situation.spec.rollout.strategy == "Rolling":
                # a rolling rollout drains the old ISVCs under its own bounds
                # (the last ones in this very step) while Service N routes
                # to every generation: what waits is the old Service alone
                generations = {
                    **generations,
                    serving: replace(
                        generations[serving],
                        isvcs={
                            index: obj
                            for index, obj in generations[serving].isvcs.items()
                            if index in step.isvcs.get(serving, frozenset())
                        },
                    ),
                }
    return scaledown.keep(step, kept, generations), kept, held


def _step_plan(
    spec: DisvcSpec,
    situation: Situation,
    step: Step,
    template_hash: str,
    live: Sequence[Obj],
    options: BuildOptions,
    routed: bool,
    target_mode: mode.Mode,
) -> Plan:
    return step_plan(
        spec, situation, step, template_hash, live, routing(spec, options), routed, target_mode
    )


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
    after = diff.after_plan(live, plan) if not plan.is_empty else list(live)
    after_all = generation.live_generations(spec.name, spec.uid, after)
    leaving = decision.leaving
    # a generation kept for the scale-down delay takes no traffic: it counts
    # neither as serving nor as rolling out, and is listed with 0%
    after_generations = {n: gen for n, gen in after_all.items() if n not in leaving}
    conflict_ids = {diff.child_id(obj) for obj in plan.conflicts}

    waiting = deadline.waiting(situation, step)
    verdict = deadline.judge(waiting, spec.rollout.progress_deadline_seconds, options.now)
    ready = conditions.ready(spec, situation, step, after_generations, plan)
    if decision.mode_problem is not None and not plan.conflicts:
        ready = conditions.mode_problem(*decision.mode_problem)
    route_plan = routing(spec, options)
    url = routes.url(spec, options.ingress_domain, conflict_ids)
    if route_plan.gateway is not None and spec.ingress.enabled:
        said = routestatus.verdict(spec.name, spec.namespace, route_plan.gateway, live)
        if said.refusal is not None and not plan.conflicts:
            ready = conditions.route_refused(said.refusal)
        if not said.accepted:
            url = None  # nothing serves it until a Gateway takes the route
    progressing = conditions.progressing(
        spec, situation, step, after_generations, verdict, tuple(leaving.values())
    )
    analysed = decision.analysed
    if analysed is not None and analysed.condition is not None and (analysed.gate.aborted or not verdict.overdue):
        progressing = analysed.condition
    counted = status.counted_generations(step.traffic, after_generations)
    active_hash = (
        decision.template_hash
        if step.active == target
        else _only(situation.generations[step.active].template_hashes)
        if step.active in situation.generations
        else None
    )
    stored_revisions = history.stored_revisions(live, spec.uid)
    kept_history = history.record(previous_status, step.active, active_hash, options.now, stored_revisions)
    revisions = history.revision_plan(
        spec,
        kept_history,
        live,
        stored_revisions,
        (target, decision.template_hash) if step.active == target else None,
    )
    observed = status.Observed(
        observed_generation=spec.generation,
        disvc_name=spec.name,
        namespace=spec.namespace,
        active_generation=step.active,
        replicas=sum(len(g.isvcs) for g in counted),
        ready_replicas=sum(g.ready_count() for g in counted),
        url=url,
        conditions=(ready, progressing),
        session_affinity=affinity.status(
            spec.affinity,
            routes.affinity_paths(
                spec,
                step.traffic,
                routed_protocol(spec, situation, step, decision.target_mode),
                route_plan,
            ),
        ),
        generations=status.generation_counts(step.traffic, after_all, frozenset(leaving))
        if len(after_all) > 1 or step.traffic.canary is not None
        else (),
        history=kept_history,
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
        spec.rollout.scale_down_delay_seconds,
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
    waits = [*leaving.values(), *([decision.reverted] if decision.reverted else [])]
    kept_analysis = analysed.entry if analysed is not None else previous_status.get("analysis")
    if isinstance(kept_analysis, Mapping):
        # the last analysis stays readable after its rollout ended
        written["analysis"] = dict(kept_analysis)
    recheck = _recheck(spec, plan, after, written, verdict, waits, options)
    if analysed is not None and analysed.recheck_after is not None:
        recheck = analysed.recheck_after if recheck is None else min(recheck, analysed.recheck_after)
    return Desired(
        # the revisions go last: a generation's template is kept once it serves
        plan=replace(
            plan,
            create=(*plan.create, *revisions.create),
            delete=(*plan.delete, *revisions.delete),
        ),
        status=written,
        events=(*warnings, *(analysed.events if analysed is not None else ()), *emitted),
        recheck_after=recheck,
        queries=analysed.queries if analysed is not None else (),
    )


def _recheck(
    spec: DisvcSpec,
    plan: Plan,
    after: Sequence[Obj],
    written: Obj,
    verdict: deadline.Verdict,
    waits: Sequence[scaledown.Leaving],
    options: BuildOptions,
) -> float | None:
    """When to reconcile again without a watch event: the earliest of the
    next progress deadline, the end of a scale-down delay, the conflict
    recheck, and at once."""
    rechecks = [verdict.recheck_after]
    # nothing else happens when a delay ends: come back then to delete
    rechecks.extend(kept.seconds_left for kept in waits)
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
    kept_affinity = previous_status.get("sessionAffinity")
    ready, stalled = conditions.invalid(problem)
    observed = status.Observed(
        observed_generation=observed_generation if isinstance(observed_generation, int) else 0,
        disvc_name=name,
        namespace=str(meta.get("namespace", "")),
        active_generation=serving,
        replicas=len(active.isvcs) if active else 0,
        ready_replicas=active.ready_count() if active else 0,
        url=None,
        conditions=(ready, stalled),
        kept_url=kept_url if isinstance(kept_url, str) else None,
        history=tuple(history.entries(previous_status)),
        # the children stay as they were, and so does what they enforce
        session_affinity=dict(kept_affinity) if isinstance(kept_affinity, Mapping) else None,
    )
    warning = events.warning_event(ready, previous_status)
    return Desired(
        plan=Plan(),
        status=status.status(observed, previous_status, options.now),
        events=(warning,) if warning is not None else (),
    )
