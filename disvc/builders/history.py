"""``status.history``: the generations that served, oldest first, and rolling back to one.

An entry is written when a generation becomes the active one (the step that
routes traffic to it), with the template it runs, so a user can see what ran
and when, and ``python -m disvc rollback`` can put an earlier template back
into the spec. Only the last ``MAX_ENTRIES`` are kept. The history lives in
the DISVC's own status, so a restarted controller finds it where it left it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from disvc.builders import names
from disvc.builders.spec import TEMPLATE_ALIAS, TEMPLATE_FIELD, DisvcSpec
from disvc.builders.types import Obj

MAX_ENTRIES: Final = 5


class NoRollbackTarget(Exception):
    """The DISVC's history holds no template to roll back to; ``str()`` says why."""


def template_record(spec: DisvcSpec) -> Obj:
    """What a rollback must restore to get ``spec``'s generation back."""
    record: Obj = {TEMPLATE_FIELD: dict(spec.template)}
    if spec.annotations:
        record["annotations"] = dict(spec.annotations)
    return record


def entries(previous_status: Mapping[str, Any]) -> list[Obj]:
    history = previous_status.get("history")
    if not isinstance(history, list):
        return []
    return [dict(entry) for entry in history if isinstance(entry, Mapping)]


def record(
    previous_status: Mapping[str, Any],
    active: int,
    template_hash: str | None,
    template: Obj | None,
    now: str,
) -> tuple[Obj, ...]:
    """The history once ``active`` serves: unchanged while it already leads
    the list, else the previous head closed (``servedUntil``) and a new entry."""
    kept = entries(previous_status)
    label = names.generation_label(active)
    if kept and kept[-1].get("generation") == label:
        return tuple(kept)
    if kept and "servedUntil" not in kept[-1]:
        kept[-1] = {**kept[-1], "servedUntil": now}
    entry: Obj = {"generation": label, "servedFrom": now}
    if template_hash is not None:
        entry["templateHash"] = template_hash
    if template is not None:
        entry["template"] = template
    kept.append(entry)
    return tuple(kept[-MAX_ENTRIES:])


def serving(disvc: Obj) -> Obj | None:
    """The history entry of the generation that serves now (``status.activeGeneration``)."""
    status = disvc.get("status")
    if not isinstance(status, Mapping):
        return None
    active = status.get("activeGeneration")
    kept = [entry for entry in entries(status) if entry.get("generation") == active]
    return kept[-1] if kept else None


def runs(disvc: Obj, entry: Mapping[str, Any]) -> bool:
    """Whether ``disvc``'s spec asks for the template ``entry`` kept (same ISVC
    template and ``spec.annotations``); False when the entry kept none."""
    template = entry.get("template")
    if not isinstance(template, Mapping):
        return False
    spec = disvc.get("spec") or {}
    current = spec.get(TEMPLATE_ALIAS, spec.get(TEMPLATE_FIELD))
    return bool(
        current == template.get(TEMPLATE_FIELD)
        and (spec.get("annotations") or {}) == (template.get("annotations") or {})
    )


def target(disvc: Obj, to: str | None = None) -> Obj:
    """The history entry a rollback restores.

    ``to`` names a generation (``v3``); by default the generation before the
    one the spec describes now: the serving one when a rollout is under way
    (a revert), else the one that served before it."""
    status = disvc.get("status")
    kept = entries(status if isinstance(status, Mapping) else {})
    with_template = [e for e in kept if isinstance(e.get("template"), Mapping)]
    if to is not None:
        chosen = [e for e in with_template if e.get("generation") == to]
        if not chosen:
            known = ", ".join(str(e.get("generation")) for e in with_template) or "none"
            raise NoRollbackTarget(f"no kept template for generation {to} (kept: {known})")
        return chosen[-1]
    if not kept:
        raise NoRollbackTarget("status.history is empty: nothing has served yet")
    active = status.get("activeGeneration") if isinstance(status, Mapping) else None
    rolling_out = kept[-1].get("generation") == active and _spec_differs(disvc, kept[-1])
    candidates = kept if rolling_out else kept[:-1]
    if not candidates or not isinstance(candidates[-1].get("template"), Mapping):
        raise NoRollbackTarget("no earlier generation with a kept template in status.history")
    return candidates[-1]


def rollback(disvc: Obj, to: str | None = None) -> Obj:
    """``disvc`` with the template of an earlier generation (``target``) put
    back into its spec.

    The result keeps ``metadata.resourceVersion``, so ``kubectl replace``
    refuses it if the DISVC changed meanwhile."""
    return restore(disvc, target(disvc, to))


def restore(disvc: Obj, entry: Mapping[str, Any]) -> Obj:
    """``disvc`` (apiVersion, kind, the identifying metadata and the spec)
    with ``entry``'s template in place of its own."""
    template = entry["template"]
    result: Obj = copy.deepcopy({key: disvc[key] for key in ("apiVersion", "kind", "metadata", "spec") if key in disvc})
    meta = result.get("metadata", {})
    result["metadata"] = {
        key: meta[key]
        for key in ("name", "namespace", "resourceVersion", "labels", "annotations")
        if key in meta
    }
    spec = result.setdefault("spec", {})
    field = TEMPLATE_ALIAS if TEMPLATE_ALIAS in spec else TEMPLATE_FIELD
    spec[field] = copy.deepcopy(template[TEMPLATE_FIELD])
    if "annotations" in template:
        spec["annotations"] = copy.deepcopy(template["annotations"])
    else:
        spec.pop("annotations", None)
    return result


def _spec_differs(disvc: Obj, entry: Mapping[str, Any]) -> bool:
    return isinstance(entry.get("template"), Mapping) and not runs(disvc, entry)
