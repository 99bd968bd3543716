"""The children one rollout step asks for, and the ``Plan`` that writes them.

A step (``strategies``) says which replica ISVCs and generation Services
exist afterwards and where external traffic goes. From it this builds the
target generation's ISVCs and Service (``isvc``, ``service``), the
DISVC-level Service ``N`` and the routes (``routes``), names the children of
other generations the step keeps as they live, and diffs the lot against the
live children (``diff``). ``steady_children`` is the same for a generation
serving alone with nothing live, as ``disvc render`` prints it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from disvc.builders import diff, isvc, knative, names, protocol, routes, service
from disvc.builders.diff import ChildId, Plan
from disvc.builders.mode import KNATIVE, Mode
from disvc.builders.protocol import ServingProtocol
from disvc.builders.routes import Routing
from disvc.builders.spec import DisvcSpec, InvalidSpec
from disvc.builders.strategies.base import Situation, Step, Traffic
from disvc.builders.types import Obj


def check_name_lengths(spec: DisvcSpec, generation_number: int) -> None:
    """Raise ``InvalidSpec`` when generation ``generation_number``'s longest
    child name would not fit in a Kubernetes name."""
    longest = (
        names.isvc_name(spec.name, generation_number, spec.replicas - 1)
        if spec.replicas
        else names.generation_name(spec.name, generation_number)
    )
    if len(longest) > names.MAX_NAME_LENGTH:
        raise InvalidSpec(
            "spec.replicas",
            f"child name {longest!r} would exceed {names.MAX_NAME_LENGTH} characters; "
            "use fewer replicas or a shorter name",
        )


def generation_children(
    spec: DisvcSpec,
    number: int,
    template_hash: str,
    serving_protocol: ServingProtocol,
    indices: Sequence[int],
    with_service: bool = True,
    live_isvcs: Iterable[Obj] = (),
) -> list[Obj]:
    """Generation ``number``'s ISVCs, then its Service: creation order, so every
    Service has something to select when it appears (the top-level Service and
    the routes follow, built for the generation they route to)."""
    body = isvc.isvc_spec(spec)
    objects = [
        diff.applied(isvc.isvc(spec, number, index, body, template_hash)) for index in indices
    ]
    if with_service:
        objects.append(
            diff.applied(
                service.generation_service(spec, number, serving_protocol, template_hash, live_isvcs)
            )
        )
    return objects


def template_protocol(spec: DisvcSpec, mode: Mode) -> ServingProtocol:
    """How a generation built from the spec's template in ``mode`` is reached."""
    base = protocol.of(spec.template)
    return knative.serving_protocol(base) if mode == KNATIVE else base


def steady_children(
    spec: DisvcSpec, generation_number: int, routing: Routing, mode: Mode = "Standard"
) -> list[Obj]:
    """Every child of generation ``generation_number`` serving alone.

    Raises ``InvalidSpec`` (a name too long, an invalid default host)."""
    check_name_lengths(spec, generation_number)
    serving_protocol = template_protocol(spec, mode)
    objects = generation_children(
        spec, generation_number, isvc.template_hash(spec), serving_protocol, range(spec.replicas)
    )
    objects.append(diff.applied(service.top_service(spec, serving_protocol)))
    objects.extend(
        routes.for_traffic(
            spec,
            Traffic(primary=generation_number),
            serving_protocol,
            serving_protocol,
            routing,
        )
    )
    return objects


def routed_protocol(
    spec: DisvcSpec, situation: Situation, step: Step, mode: Mode = "Standard"
) -> ServingProtocol:
    """The protocol of the generation the routes serve: while another
    generation serves, the routes and the top-level Service keep its
    protocol; a rollout that changes it changes them at the switch."""
    target_protocol = template_protocol(spec, mode)
    serving_generation = situation.generations.get(step.active)
    if step.active != situation.target and serving_generation is not None:
        return serving_generation.protocol or target_protocol
    return target_protocol


def step_plan(
    spec: DisvcSpec,
    situation: Situation,
    step: Step,
    template_hash: str,
    live: Sequence[Obj],
    routing: Routing,
    routed: bool,
    mode: Mode = "Standard",
) -> Plan:
    """The writes that take ``live`` to ``step``. With ``routed`` False the
    routes stay as they live (a Service they would name is held by a foreign
    object: never point our route at it)."""
    target = situation.target
    target_protocol = template_protocol(spec, mode)
    route_protocol = routed_protocol(spec, situation, step, mode)
    desired = generation_children(
        spec,
        target,
        template_hash,
        target_protocol,
        sorted(step.isvcs.get(target, frozenset())),
        with_service=target in step.services,
        live_isvcs=_isvcs(situation, (target,)),
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
    desired.append(
        diff.applied(service.top_service(spec, route_protocol, _isvcs(situation, step.isvcs)))
    )
    if routed:
        desired.extend(
            routes.for_traffic(spec, step.traffic, route_protocol, target_protocol, routing)
        )
    else:
        keep.update(routes.route_ids(spec.name))
    return diff.plan(desired, live, spec.uid, keep)


def _isvcs(situation: Situation, numbers: Iterable[int]) -> list[Obj]:
    """The live ISVCs of generations ``numbers``."""
    return [
        obj
        for number in numbers
        if number in situation.generations
        for obj in situation.generations[number].isvcs.values()
    ]
