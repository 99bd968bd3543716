"""``kubectl disvc rollback N [--to vG]``: an earlier template back into the spec.

The target comes from ``status.history`` as ``python -m disvc rollback``
picks it (``history.target``): ``--to`` names a generation, else the one
before the spec's own (the serving one mid-rollout). The patch is
conditional on the resourceVersion read, so a DISVC changed meanwhile is
left alone and the command says to run again. Refused when the spec already
asks for that template.
"""

from __future__ import annotations

from typing import TextIO

from disvc.builders import history
from disvc.cli import rollout, status
from disvc.cli.errors import CliError, NothingToDo
from disvc.cli.kube import RESOURCE, Api


def run(api: Api, name: str, to: str | None, out: TextIO) -> int:
    disvc = api.get_with_history(name)
    try:
        entry = history.target(disvc, to)
    except history.NoRollbackTarget as problem:
        raise CliError(f"{RESOURCE}/{name}: cannot roll back: {problem}") from problem
    generation = entry.get("generation")
    if history.runs(disvc, entry):
        raise NothingToDo(f"{RESOURCE}/{name}: the spec already asks for {generation}'s template")
    api.json_patch(name, rollout.restore_patch(disvc, entry))
    serving = history.serving(disvc)
    if serving is not None and serving.get("generation") == generation:
        effect = f"{generation} keeps serving and the unfinished generation is deleted"
    else:
        effect = f"a new generation rolls out with it ({status.strategy(disvc)})"
    out.write(f"{RESOURCE}/{name} rolled back to {rollout.label(entry)}: {effect}\n")
    return 0
