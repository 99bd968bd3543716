"""``kubectl disvc abort N``: stop a rollout, back to what serves.

Puts the serving generation's template (its ControllerRevision) back into
the spec, conditional on the resourceVersion read: the controller then
deletes the unfinished generation and creates none. Refused when the spec
already asks for the serving template (no rollout to stop).
"""

from __future__ import annotations

from typing import TextIO

from disvc.builders import history
from disvc.cli import rollout
from disvc.cli.errors import CliError, NothingToDo
from disvc.cli.kube import RESOURCE, Api


def run(api: Api, name: str, out: TextIO) -> int:
    disvc = api.get_with_history(name)
    serving = history.serving(disvc)
    if serving is None:
        raise NothingToDo(f"{RESOURCE}/{name}: nothing serves yet, so there is no template to go back to")
    if history.runs(disvc, serving):
        raise NothingToDo(
            f"{RESOURCE}/{name}: no rollout to abort, the spec already asks for the serving "
            f"generation {serving.get('generation')}'s template"
        )
    if not isinstance(serving.get("template"), dict):
        raise CliError(f"{RESOURCE}/{name}: no ControllerRevision or status.history entry keeps the template of {serving.get('generation')}")
    api.json_patch(name, rollout.restore_patch(disvc, serving))
    out.write(
        f"{RESOURCE}/{name} aborted: spec back to {rollout.label(serving)}, which keeps serving; "
        "the unfinished generation is deleted\n"
    )
    return 0
