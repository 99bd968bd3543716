"""``kubectl disvc history N [--generation vG]``: the generations that served.

One line per ``status.history`` entry, oldest first (as ``kubectl rollout
history`` lists revisions): when it served, its template's hash and
``spec.annotations``, and which entry serves now and which the spec asks
for. ``--generation`` prints that entry's kept template as YAML.
"""

from __future__ import annotations

from typing import TextIO

import yaml

from disvc.builders import history
from disvc.builders.types import Obj
from disvc.cli import table
from disvc.cli.errors import CliError, NothingToDo
from disvc.cli.kube import RESOURCE, Api
from disvc.cli.status import UNKNOWN


def run(api: Api, name: str, generation: str | None, out: TextIO) -> int:
    disvc = api.get_with_history(name)
    kept = history.entries(disvc.get("status") or {})
    if not kept:
        raise NothingToDo(f"{RESOURCE}/{name} has no history yet: no generation has served")
    if generation is not None:
        chosen = [entry for entry in kept if entry.get("generation") == generation]
        if not chosen or not isinstance(chosen[-1].get("template"), dict):
            known = ", ".join(str(entry.get("generation")) for entry in kept)
            raise CliError(f"{RESOURCE}/{name}: no kept template for {generation} (kept: {known})")
        out.write(yaml.safe_dump(chosen[-1]["template"], sort_keys=False))
        return 0
    out.write(listing(disvc, kept))
    return 0


def listing(disvc: Obj, kept: list[Obj]) -> str:
    serving = history.serving(disvc)
    header = ["GENERATION", "TEMPLATE-HASH", "SERVED-FROM", "SERVED-UNTIL", "ANNOTATIONS", "NOTE"]
    rows = []
    for entry in kept:
        template = entry.get("template")
        annotations = template.get("annotations") if isinstance(template, dict) else None
        notes = []
        if serving is not None and entry.get("generation") == serving.get("generation"):
            notes.append("serving")
        if history.runs(disvc, entry):
            notes.append("spec")
        rows.append(
            [
                str(entry.get("generation", UNKNOWN)),
                str(entry.get("templateHash", UNKNOWN)),
                str(entry.get("servedFrom", UNKNOWN)),
                str(entry.get("servedUntil", UNKNOWN)),
                ",".join(f"{k}={v}" for k, v in sorted((annotations or {}).items())) or UNKNOWN,
                ", ".join(notes),
            ]
        )
    return "\n".join(table.lines(header, rows)) + "\n"
