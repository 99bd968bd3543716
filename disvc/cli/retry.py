"""``kubectl disvc retry N``: run an aborted canary analysis again.

A canary whose analysis failed stays aborted (its ISVCs deleted, traffic on
the serving generation) until the template changes or the user retries:
this verb sets ``disvc.serving.kserve.io/analysis-retry`` on the DISVC to a
new value (the previous one plus 1), conditional on the resourceVersion
read; the controller then creates the canary again and walks its steps from
the first. Refused when no analysis has failed for the template the spec
asks for.
"""

from __future__ import annotations

from typing import TextIO

from disvc.builders import spec
from disvc.cli import rollout, status
from disvc.cli.errors import NothingToDo
from disvc.cli.kube import RESOURCE, Api


def run(api: Api, name: str, out: TextIO) -> int:
    disvc = api.get(name)
    reason = status.progressing(disvc).get("reason")
    if reason != "AnalysisFailed":
        raise NothingToDo(
            f"{RESOURCE}/{name}: no failed canary analysis to retry (Progressing reason is {reason or 'unset'})"
        )
    annotations = (disvc.get("metadata") or {}).get("annotations") or {}
    previous = annotations.get(spec.RETRY_ANNOTATION, "0")
    token = str(int(previous) + 1) if previous.isdigit() else "1"
    key = spec.RETRY_ANNOTATION.replace("~", "~0").replace("/", "~1")
    operations = [*rollout.precondition(disvc)]
    if not annotations:
        operations.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    operations.append({"op": "add", "path": f"/metadata/annotations/{key}", "value": token})
    api.json_patch(name, operations)
    generation = ((disvc.get("status") or {}).get("analysis") or {}).get("generation", "the canary")
    out.write(
        f"{RESOURCE}/{name} retried: {spec.RETRY_ANNOTATION}={token}; {generation} is created again "
        "and its analysis starts over at the first step\n"
    )
    return 0
