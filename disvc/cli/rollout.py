"""What the steering verbs share: is a rollout under way, and the conditional
JSON patch that puts a kept template back into the spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from disvc.builders import history
from disvc.builders.types import Obj


def under_way(disvc: Obj) -> bool:
    """The spec asks for a template other than the serving generation's, or
    more than one generation is live."""
    serving = history.serving(disvc)
    live = (disvc.get("status") or {}).get("generations")
    return (serving is not None and not history.runs(disvc, serving)) or (isinstance(live, list) and len(live) > 1)


def precondition(disvc: Obj) -> list[Obj]:
    """The patch operation that makes the server refuse the patch (409) if the
    DISVC changed after it was read."""
    version = (disvc.get("metadata") or {}).get("resourceVersion")
    return [{"op": "replace", "path": "/metadata/resourceVersion", "value": version}]


def restore_patch(disvc: Obj, entry: Mapping[str, Any]) -> list[Obj]:
    """A JSON patch giving ``disvc``'s spec the template ``entry`` kept (as
    ``history.restore`` defines it), conditional on ``disvc``'s resourceVersion."""
    before = disvc.get("spec") or {}
    after = history.restore(disvc, entry).get("spec") or {}
    operations = precondition(disvc)
    for key in sorted(set(before) | set(after)):
        if key not in after:
            operations.append({"op": "remove", "path": f"/spec/{key}"})
        elif before.get(key) != after[key] or key not in before:
            operations.append({"op": "add", "path": f"/spec/{key}", "value": after[key]})
    return operations


def label(entry: Mapping[str, Any]) -> str:
    """``v3 (templateHash abc123)``, or just the generation when no hash was kept."""
    generation = str(entry.get("generation", "?"))
    digest = entry.get("templateHash")
    return f"{generation} (templateHash {digest})" if digest else generation
