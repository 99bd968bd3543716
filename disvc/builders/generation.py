"""Generations: which one serves, which one we want, and where a rollout stands.

A generation ``g`` is the set of children named ``N-v<g>...``: its replica
ISVCs and its Service. Everything here is derived from live objects (names,
the template-hash annotation, readiness) plus ``status.activeGeneration``, so
a restarted controller picks a rollout up where it stood.

- The *serving* generation ``s`` is the one the Ingress and
  ``status.address`` point at: ``status.activeGeneration`` while its objects
  are live, else the lowest live generation with a Ready ISVC, else none.
  (A generation is numbered above every live one and the one it replaces
  goes only after the switch, so the serving generation is the oldest one
  left: a successor that is only partly Ready must not be taken for it.)
- The *target* generation ``t`` is the one whose template hash matches the
  spec (preferring ``s``), else a fresh number above every live one.
- ``t == s`` (or no ``s``) is the steady state; otherwise a rollout runs,
  step by step as the DISVC's strategy decides (``strategies``), until
  ``t`` serves alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from disvc.builders import knative, mode, names, ownership, protocol
from disvc.builders.protocol import ServingProtocol
from disvc.builders.types import Obj, child_kind, find_condition


@dataclass(slots=True)
class LiveGeneration:
    """The live, controlled, not terminating children of one generation."""

    number: int
    isvcs: dict[int, Obj] = field(default_factory=dict)
    """Replica index -> live ISVC."""
    template_hashes: set[str] = field(default_factory=set)
    """Template hashes its ISVCs and Service carry (normally exactly one)."""
    has_service: bool = False
    protocol: ServingProtocol | None = None
    """How its live Service forwards (None without a recognisable Service):
    while it serves, the Ingress and the top-level Service keep to it."""

    def ready_count(self, indices: range | None = None) -> int:
        """How many of its ISVCs (only those at ``indices``, when given) are Ready."""
        return sum(
            1
            for index, obj in self.isvcs.items()
            if (indices is None or index in indices) and is_ready(obj)
        )

    def is_complete(self, replicas: int) -> bool:
        """True when replicas ``0..replicas-1`` all exist and are Ready."""
        return all(
            index in self.isvcs and is_ready(self.isvcs[index]) for index in range(replicas)
        )


@dataclass(frozen=True, slots=True)
class Rollout:
    """Which generation serves and which one the spec asks for."""

    serving: int | None
    target: int

    @property
    def is_rolling_out(self) -> bool:
        """A new generation is being brought up beside the serving one."""
        return self.serving is not None and self.serving != self.target


def is_ready(isvc: Obj) -> bool:
    """An ISVC is Ready when ``status.conditions`` has ``Ready=True``; in
    Knative mode also only while it has ready copies on its latest revision
    (KServe's Ready stays True at zero pods and while a new revision fails)."""
    ready = ready_condition(isvc)
    if ready is None or ready.get("status") != "True":
        return False
    return not mode.is_knative(isvc) or knative.is_serving_latest(isvc)


def ready_condition(obj: Obj) -> Mapping[str, Any] | None:
    """The ``Ready`` entry of ``status.conditions``, if there is one."""
    return find_condition(obj.get("status"), "Ready")


def live_generations(
    disvc_name: str, owner_uid: str, live: Sequence[Obj]
) -> dict[int, LiveGeneration]:
    """Group the live children this DISVC controls by generation.

    Terminating objects are left out: they are already on their way and must
    count neither as serving nor as replicas."""
    generations: dict[int, LiveGeneration] = {}
    for obj in live:
        if not ownership.is_controlled_by(obj, owner_uid) or ownership.is_terminating(obj):
            continue
        kind = child_kind(obj)
        name = _name(obj)
        if kind == "InferenceService":
            parsed = names.parse_isvc_name(disvc_name, name)
            if parsed is None:
                continue
            number, index = parsed
            generation = generations.setdefault(number, LiveGeneration(number))
            generation.isvcs[index] = obj
        elif kind == "Service":
            parsed_number = names.parse_generation_name(disvc_name, name)
            if parsed_number is None:
                continue
            generation = generations.setdefault(parsed_number, LiveGeneration(parsed_number))
            generation.has_service = True
            generation.protocol = protocol.of_service(obj)
        else:
            continue
        hash_ = _annotations(obj).get(names.TEMPLATE_HASH_ANNOTATION)
        if isinstance(hash_, str):
            generation.template_hashes.add(hash_)
    return generations


def serving(active_generation: object, generations: Mapping[int, LiveGeneration]) -> int | None:
    """The generation that serves now (see the module docstring)."""
    active = names.parse_generation_label(active_generation)
    if active is not None and active in generations:
        return active
    with_ready = [number for number, gen in generations.items() if gen.ready_count() > 0]
    return min(with_ready) if with_ready else None


def target(
    template_hash: str, serving_generation: int | None, generations: Mapping[int, LiveGeneration]
) -> int:
    """The generation the spec asks for (see the module docstring)."""
    if (
        serving_generation is not None
        and template_hash in generations[serving_generation].template_hashes
    ):
        return serving_generation
    matching = [n for n, gen in generations.items() if template_hash in gen.template_hashes]
    if matching:
        # the newest, so a revert during a rollout resumes the latest attempt
        return max(matching)
    known = list(generations)
    if serving_generation is not None:
        known.append(serving_generation)
    return max(known) + 1 if known else 1


def rollout(
    active_generation: object, template_hash: str, generations: Mapping[int, LiveGeneration]
) -> Rollout:
    serving_generation = serving(active_generation, generations)
    return Rollout(serving_generation, target(template_hash, serving_generation, generations))


def _name(obj: Obj) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""


def _annotations(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}
