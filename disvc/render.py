"""``disvc render``: print the children the controller would create, without a cluster.

Reads DistributedInferenceService manifests, runs them through the same
builders the reconciler uses (``builders.desired``) and writes every child as
multi-document YAML, so a user can review, diff or ``kubectl apply --dry-run``
what the controller will do. Optionally the status the DISVC would report
once every ISVC is Ready.

``rollout`` shows a rollout instead: from a previous manifest's steady state
to the new one, the children and status as they stand after a given number
of reconciles, each new ISVC turning Ready before the next reconcile, so a
user can see how each strategy (``spec.rollout``) moves step by step. A
reconcile that asks to come back later (the scale-down delay after a
switch) is followed by one that late: the clock the builders are given
moves on by that much, so the delay is one step of its own.

Bad input is one clear line naming the file, the object and the field, never
a traceback: ``RenderError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import yaml

from disvc.builders import desired, names, spec
from disvc.builders.types import CONTROLLER_REVISION_KIND, DISVC_API_VERSION, DISVC_KIND, Obj

PLACEHOLDER_UID: Final = "00000000-0000-0000-0000-000000000000"
"""ownerReference uid for a DISVC that was never created (a manifest has none)."""

DEFAULT_NAMESPACE: Final = "default"
"""Namespace of a manifest that names none, as ``kubectl apply`` would use."""


class RenderError(Exception):
    """Input that cannot be rendered; ``str()`` is the one line to show the user."""


@dataclass(frozen=True, slots=True)
class RenderOptions:
    build: desired.BuildOptions = field(default_factory=desired.BuildOptions)
    generation: int = 1
    """Render the children of this generation (``N-v<g>``)."""
    with_status: bool = False
    """Also print the status the DISVC would report once every ISVC is Ready."""


def load(text: str, source: str) -> list[Obj]:
    """The DISVC manifests in ``text`` (one YAML stream); ``source`` names it in errors."""
    return _disvcs(_documents(text, source), source)


def load_with_revisions(text: str, source: str) -> tuple[list[Obj], list[Obj]]:
    """The DISVC manifests in ``text`` and the ControllerRevisions beside them
    (as documents, or items of a ``List`` as ``kubectl get -o yaml`` prints them)."""
    documents: list[Any] = []
    revisions: list[Obj] = []
    for document in _documents(text, source):
        kind = document.get("kind") if isinstance(document, dict) else None
        items = (
            document.get("items")
            if isinstance(document, dict) and isinstance(kind, str) and kind.endswith("List")
            else None
        )
        for obj in items if isinstance(items, list) else [document]:
            if isinstance(obj, dict) and (
                obj.get("kind") == CONTROLLER_REVISION_KIND or (items is not None and "revision" in obj)
            ):
                revisions.append(obj)
            else:
                documents.append(obj)
    return _disvcs(documents, source), revisions


def _documents(text: str, source: str) -> list[Any]:
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RenderError(f"{source}: not valid YAML{where}") from problem


def _disvcs(documents: list[Any], source: str) -> list[Obj]:
    if not documents:
        raise RenderError(f"{source}: no DistributedInferenceService found")
    result: list[Obj] = []
    for position, document in enumerate(documents, start=1):
        if not isinstance(document, dict):
            raise RenderError(f"{source}: document {position} is not a Kubernetes object")
        if document.get("kind") != DISVC_KIND or document.get("apiVersion") != DISVC_API_VERSION:
            raise RenderError(
                f"{source}: document {position} is {document.get('apiVersion')}/"
                f"{document.get('kind')}, expected {DISVC_API_VERSION}/{DISVC_KIND}"
            )
        result.append(document)
    return result


def as_created(disvc: Obj) -> Obj:
    """``disvc`` as the API server would hold it: namespace, uid and generation
    filled in when the manifest has none. Returns a new object."""
    meta = disvc.get("metadata")
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    meta.setdefault("namespace", DEFAULT_NAMESPACE)
    meta.setdefault("uid", PLACEHOLDER_UID)
    meta.setdefault("generation", 1)
    return {**disvc, "metadata": meta}


def render(disvcs: Iterable[Obj], source: str, options: RenderOptions) -> list[Obj]:
    """Every child (and, if asked, a status document) for each DISVC, in order."""
    out: list[Obj] = []
    for disvc in disvcs:
        created = as_created(disvc)
        try:
            children = desired.children(created, options.generation, options.build)
        except spec.InvalidSpec as problem:
            raise RenderError(f"{source}: {_describe(created)}: {problem}") from problem
        out.extend(children)
        if options.with_status:
            out.append(_status_document(created, children, options))
    return out


def rollout(previous: Obj, current: Obj, source: str, steps: int, options: RenderOptions) -> list[Obj]:
    """The children (and, if asked, the status) ``steps`` reconciles into the
    rollout from ``previous`` (served, every ISVC Ready) to ``current``."""
    old = as_created(previous)
    new = as_created(current)
    meta = new["metadata"]
    if meta.get("name") != old["metadata"].get("name"):
        raise RenderError(f"{source}: {_describe(new)} is not the DISVC of the previous manifest")
    new = {**new, "metadata": {**meta, "uid": old["metadata"]["uid"]}}
    live: list[Obj] = []
    state = old
    for _ in range(_SETTLE_ROUNDS):
        state, live, want = _reconcile(state, live, source, options)
        live = _all_ready(live)
        if want.plan.is_empty:
            break
    meta = new["metadata"]
    state = {
        **new,
        "metadata": {**meta, "generation": int(state["metadata"].get("generation", 1)) + 1},
        "status": state.get("status"),
    }
    for step in range(steps):
        if step:
            live = _all_ready(live)
        state, live, want = _reconcile(state, live, source, options)
        if want.recheck_after:
            options = _later(options, want.recheck_after)
    out = sorted(live, key=lambda obj: (_KIND_ORDER.get(obj["kind"], 9), obj["metadata"]["name"]))
    if options.with_status:
        out.append(
            {
                "apiVersion": DISVC_API_VERSION,
                "kind": DISVC_KIND,
                "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
                "status": state["status"],
            }
        )
    return out


_SETTLE_ROUNDS: Final = 20
_KIND_ORDER: Final = {"InferenceService": 0, "Service": 1, "Ingress": 2}


def _reconcile(
    disvc: Obj, live: list[Obj], source: str, options: RenderOptions
) -> tuple[Obj, list[Obj], desired.Desired]:
    """One reconcile with its plan written: creates and updates land as sent,
    deletes go at once."""
    want = desired.state(disvc, live, options.build)
    ready_condition = want.status.get("conditions", [{}])[0]
    if ready_condition.get("reason") == "InvalidSpec":
        raise RenderError(f"{source}: {_describe(disvc)}: {ready_condition.get('message')}")
    by_id = {(obj["kind"], obj["metadata"]["name"]): obj for obj in live}
    for obj in (*want.plan.create, *want.plan.update):
        key = (obj["kind"], obj["metadata"]["name"])
        previous = by_id.get(key)
        by_id[key] = {**obj, "status": previous["status"]} if previous and "status" in previous else obj
    for ref in want.plan.delete:
        by_id.pop((ref.kind, ref.name), None)
    return {**disvc, "status": want.status}, list(by_id.values()), want


def _later(options: RenderOptions, seconds: float) -> RenderOptions:
    """``options`` with the builders' clock ``seconds`` later (rounded up to
    whole seconds, as status times are written)."""
    now = datetime.fromisoformat(options.build.now)
    later = now + timedelta(seconds=-(-seconds // 1))
    stamp = later.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return replace(options, build=replace(options.build, now=stamp))


def _all_ready(live: list[Obj]) -> list[Obj]:
    return [
        {**obj, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        if obj["kind"] == "InferenceService"
        else obj
        for obj in live
    ]


def dump(objects: Iterable[Obj]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False, default_flow_style=False)


def _status_document(disvc: Obj, children: list[Obj], options: RenderOptions) -> Obj:
    """The status once every child is live and every ISVC Ready."""
    ready_condition = {"type": "Ready", "status": "True"}
    live = [
        {**child, "status": {"conditions": [ready_condition]}} if child["kind"] == "InferenceService" else child
        for child in children
    ]
    serving = {
        **disvc,
        "status": {"activeGeneration": names.generation_label(options.generation)},
    }
    want = desired.state(serving, live, options.build)
    meta = disvc["metadata"]
    return {
        "apiVersion": DISVC_API_VERSION,
        "kind": DISVC_KIND,
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "status": want.status,
    }


def _describe(disvc: Obj) -> str:
    meta = disvc.get("metadata", {})
    return f"{DISVC_KIND} {meta.get('namespace', '')}/{meta.get('name', '<unnamed>')}"
