"""``status.history``: the generations that served, oldest first, and rolling back to one.

An entry is written when a generation becomes the active one (the step that
routes traffic to it): its generation, template hash and when it served, so
a user can see what ran and when. The template itself goes where Kubernetes
keeps revisions: one ``apps/v1`` ControllerRevision per generation that
served (``revision_for``), named ``N-revision-v<g>``, labelled ``disvc: N``,
controlled by the DISVC, its ``data`` the template and ``revision`` the
generation number, as a Deployment keeps its ReplicaSets' templates. Keeping
templates out of the status keeps the DISVC small: five templates of a few
hundred KiB would push it past etcd's object size limit. Only the last
``MAX_ENTRIES`` generations keep an entry and a revision (``revision_plan``
deletes the older ones).

``python -m disvc rollback`` and ``kubectl disvc`` read the templates back
(``template_of``, ``resolved``) and put an earlier one into the spec. An
entry written by an earlier version still carries its template; it keeps
serving rollbacks until the generation's ControllerRevision exists, made
from it, and then the status drops it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from disvc.builders import diff, names, ownership
from disvc.builders.diff import Plan
from disvc.builders.spec import TEMPLATE_ALIAS, TEMPLATE_FIELD, DisvcSpec
from disvc.builders.types import (
    CONTROLLER_REVISION_API_VERSION,
    CONTROLLER_REVISION_KIND,
    Obj,
    child_kind,
)

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
    now: str,
    stored: Mapping[int, Obj] | None = None,
) -> tuple[Obj, ...]:
    """The history once ``active`` serves: unchanged while it already leads
    the list, else the previous head closed (``servedUntil``) and a new entry.

    ``stored`` holds the live ControllerRevisions by generation: an entry of
    the earlier format drops its template once its revision keeps it."""
    kept = [_without_stored_template(entry, stored or {}) for entry in entries(previous_status)]
    label = names.generation_label(active)
    if kept and kept[-1].get("generation") == label:
        return tuple(kept)
    if kept and "servedUntil" not in kept[-1]:
        kept[-1] = {**kept[-1], "servedUntil": now}
    entry: Obj = {"generation": label, "servedFrom": now}
    if template_hash is not None:
        entry["templateHash"] = template_hash
    kept.append(entry)
    return tuple(kept[-MAX_ENTRIES:])


def _without_stored_template(entry: Obj, stored: Mapping[int, Obj]) -> Obj:
    number = names.parse_generation_label(entry.get("generation"))
    if "template" in entry and number is not None and number in stored:
        return {key: value for key, value in entry.items() if key != "template"}
    return entry


def revision_name(disvc_name: str, generation: int) -> str:
    """``N-revision-v<g>``: generation ``g``'s ControllerRevision."""
    return f"{disvc_name}-revision-{names.generation_label(generation)}"


def revision_for(spec: DisvcSpec, generation: int, template: Obj, template_hash: str | None) -> Obj:
    """The ControllerRevision that keeps generation ``generation``'s ``template``
    (a ``template_record``)."""
    annotations = {names.TEMPLATE_HASH_ANNOTATION: template_hash} if template_hash else None
    return diff.applied(
        {
            "apiVersion": CONTROLLER_REVISION_API_VERSION,
            "kind": CONTROLLER_REVISION_KIND,
            "metadata": ownership.child_metadata(
                spec.name,
                spec.uid,
                revision_name(spec.name, generation),
                spec.namespace,
                names.child_labels(spec.name),
                annotations,
            ),
            "data": template,
            "revision": generation,
        }
    )


def is_revision(obj: Mapping[str, Any]) -> bool:
    return child_kind(dict(obj)) == CONTROLLER_REVISION_KIND


def stored_revisions(revisions: Iterable[Obj], owner_uid: str | None = None) -> dict[int, Obj]:
    """The ControllerRevisions among ``revisions`` by generation number; with
    ``owner_uid``, only those that DISVC controls (and not terminating)."""
    found: dict[int, Obj] = {}
    for obj in revisions:
        if not is_revision(obj) or ownership.is_terminating(obj):
            continue
        if owner_uid is not None and not ownership.is_controlled_by(obj, owner_uid):
            continue
        number = obj.get("revision")
        if isinstance(number, int) and not isinstance(number, bool):
            found[number] = obj
    return found


def template_of(revisions: Iterable[Obj], generation: str | int, owner_uid: str | None = None) -> Obj | None:
    """The template (a ``template_record``) generation ``generation`` (``v3``
    or 3) ran, from its ControllerRevision among ``revisions``; None when
    none keeps it."""
    number = generation if isinstance(generation, int) else names.parse_generation_label(generation)
    if number is None:
        return None
    revision = stored_revisions(revisions, owner_uid).get(number)
    data = revision.get("data") if revision is not None else None
    return dict(data) if isinstance(data, Mapping) and TEMPLATE_FIELD in data else None


def resolved(disvc: Obj, revisions: Iterable[Obj]) -> Obj:
    """``disvc`` with every ``status.history`` entry carrying its template:
    from the entry itself (the earlier format) or from its ControllerRevision.
    What ``target``, ``runs`` and ``restore`` read."""
    status = disvc.get("status")
    if not isinstance(status, Mapping):
        return disvc
    meta = disvc.get("metadata")
    uid = meta.get("uid") if isinstance(meta, Mapping) else None
    kept = list(revisions)
    filled: list[Obj] = []
    for entry in entries(status):
        if not isinstance(entry.get("template"), Mapping):
            template = template_of(kept, str(entry.get("generation")), uid if isinstance(uid, str) else None)
            if template is not None:
                entry = {**entry, "template": template}
        filled.append(entry)
    return {**disvc, "status": {**status, "history": filled}}


def revision_plan(
    spec: DisvcSpec,
    history: Sequence[Obj],
    live: Sequence[Obj],
    stored: Mapping[int, Obj],
    current: tuple[int, str | None] | None,
) -> Plan:
    """The ControllerRevisions to create and delete so that each generation
    of ``history`` has one and no other generation does.

    ``current`` is (generation, template hash) when the spec's template is
    the active generation's: its revision is built from the spec. Another
    generation's is built from the template its entry still carries (the
    earlier format), or not at all. A revision is never updated (its data is
    immutable); a name held by an object this DISVC does not control is
    left alone. ``stored`` is ``stored_revisions(live, spec.uid)``, which
    the caller has already worked out for ``record``."""
    held = {obj["metadata"]["name"] for obj in live if is_revision(obj) and isinstance(obj.get("metadata"), Mapping)}
    wanted: set[int] = set()
    create: list[Obj] = []
    for entry in history:
        number = names.parse_generation_label(entry.get("generation"))
        if number is None:
            continue
        wanted.add(number)
        if number in stored or revision_name(spec.name, number) in held:
            continue
        hash_ = entry.get("templateHash")
        if current is not None and current[0] == number:
            create.append(revision_for(spec, number, template_record(spec), current[1]))
        elif isinstance(entry.get("template"), Mapping):
            create.append(
                revision_for(spec, number, dict(entry["template"]), hash_ if isinstance(hash_, str) else None)
            )
    gone = [obj for number, obj in stored.items() if number not in wanted]
    deletes = diff.plan([], gone, spec.uid).delete
    return Plan(create=tuple(create), delete=deletes)


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
        raise NoRollbackTarget("no earlier generation in status.history has a kept template (its ControllerRevision)")
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
        key: meta[key] for key in ("name", "namespace", "resourceVersion", "labels", "annotations") if key in meta
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
