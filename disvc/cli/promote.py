"""``kubectl disvc promote N``: give a canary all traffic.

Removes ``spec.rollout.canaryTrafficPercent`` (the README's way to promote):
the blue/green switch follows once every ISVC of the new generation is Ready.
Refused when the DISVC rolls out no canary, or nothing is rolling out.
"""

from __future__ import annotations

from typing import TextIO

from disvc.builders import history
from disvc.cli import rollout, status
from disvc.cli.errors import NothingToDo
from disvc.cli.kube import RESOURCE, Api


def run(api: Api, name: str, out: TextIO) -> int:
    disvc = api.get_with_history(name)
    percent = status.rollout(disvc).get("canaryTrafficPercent")
    if percent is None:
        raise NothingToDo(
            f"{RESOURCE}/{name} is not a canary (no spec.rollout.canaryTrafficPercent): "
            f"its {status.strategy(disvc)} rollouts finish by themselves"
        )
    serving = history.serving(disvc)
    if serving is None:
        raise NothingToDo(f"{RESOURCE}/{name}: nothing serves yet, so there is no canary to promote")
    if not rollout.under_way(disvc):
        raise NothingToDo(
            f"{RESOURCE}/{name}: no rollout under way ({serving.get('generation')} serves all traffic); "
            "nothing to promote"
        )
    operations = [
        *rollout.precondition(disvc),
        {"op": "remove", "path": "/spec/rollout/canaryTrafficPercent"},
    ]
    analysed = "analysis" in status.rollout(disvc)
    if analysed:
        # the CRD allows an analysis only with a canary: it goes too
        operations.append({"op": "remove", "path": "/spec/rollout/analysis"})
    api.json_patch(name, operations)
    newest = (status.generations(disvc) or [{}])[-1].get("name", "the new generation")
    out.write(
        f"{RESOURCE}/{name} promoted: removed spec.rollout.canaryTrafficPercent (was {percent}); "
        f"{newest} takes all traffic once all its ISVCs are Ready, then {serving.get('generation')} goes\n"
        + ("  (removed spec.rollout.analysis too: the canary skips the steps left)\n" if analysed else "")
        + "  (set canaryTrafficPercent again before the next template change to canary that one too)\n"
    )
    return 0
