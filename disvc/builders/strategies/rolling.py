"""Rolling (``spec.rollout.strategy: Rolling``): replace ISVCs of the old
generation by ISVCs of the new one a few at a time, as a Deployment replaces
Pods, for models whose replicas cannot all be doubled (GPUs).

Bounds, checked on every step from live objects only:

- at most ``replicas + maxSurge`` ISVCs exist at any moment: creates are
  counted against every live ISVC *before* this step's deletes, because the
  reconciler writes creates first;
- a Ready ISVC is deleted only while at least ``replicas - maxUnavailable``
  Ready ISVCs remain. An ISVC that is not Ready serves nobody and goes first.

While more than one generation has ISVCs, external traffic goes to the
DISVC-level Service ``N``, which selects every generation's Ready replicas,
so each generation takes traffic in proportion to its Ready replicas. Once
only the new generation is left and it is complete, the Ingress moves to
``N-v<new>`` and the old generation's Service goes.

Everything that is not a wanted replica of the target generation is "old":
the serving generation, a superseded attempt, or a replica above
``replicas`` after a scale-down. So a revert mid-rollout is a rollout back
(the abandoned generation drains under the same bounds) and a scale during
a rollout needs no special case.
"""

from __future__ import annotations

from disvc.builders.generation import is_ready
from disvc.builders.strategies.base import Situation, Step, Traffic


def step(situation: Situation) -> Step:
    spec = situation.spec
    replicas = spec.replicas
    target = situation.target
    generations = situation.generations
    wanted = range(replicas)
    target_live = set(generations[target].isvcs) if target in generations else set()

    # ISVCs the scale-down delay holds count against the surge until they go
    total = sum(len(gen.isvcs) for gen in generations.values()) + situation.held_isvcs
    room = max(0, replicas + spec.rollout.surge(replicas) - total)
    create = sorted(set(wanted) - target_live)[:room]

    old = [
        (number, index, is_ready(obj))
        for number, gen in generations.items()
        for index, obj in gen.isvcs.items()
        if number != target or index not in wanted
    ]
    ready = sum(gen.ready_count() for gen in generations.values())
    spare = max(0, ready - (replicas - spec.rollout.unavailable(replicas)))

    def drain_order(item: tuple[int, int, bool]) -> tuple[bool, bool, bool, int, int]:
        number, index, item_ready = item
        # not Ready first; then superseded attempts, the serving generation,
        # and the target's own surplus last; highest index first
        return (item_ready, number == target, number == situation.serving, number, -index)

    deleted: set[tuple[int, int]] = set()
    for number, index, item_ready in sorted(old, key=drain_order):
        if item_ready:
            if spare == 0:
                continue
            spare -= 1
        deleted.add((number, index))

    isvcs: dict[int, frozenset[int]] = {}
    for number, gen in generations.items():
        kept = {index for index in gen.isvcs if (number, index) not in deleted}
        if number == target:
            kept |= set(create)
        if kept:
            isvcs[number] = frozenset(kept)
    if target not in isvcs:
        isvcs[target] = frozenset(create)

    others_left = any(number != target for number in isvcs)
    surplus_left = any(index not in wanted for index in isvcs[target])
    done = (
        not others_left
        and not surplus_left
        and not create
        and situation.may_switch
        and situation.target_is_complete()
    )
    if done or situation.serving is None:
        active = target
    else:
        active = situation.serving
    services = {target, active} | {number for number in isvcs}
    if done:
        services = {target}
    primary = target if (active == target and not others_left) else None
    return Step(
        isvcs=isvcs,
        services=frozenset(n for n in services if n in generations or n == target),
        active=active,
        traffic=Traffic(primary=primary),
    )
