"""Server-side apply and ``metadata.managedFields``, as structured-merge-diff does them.

An apply merges the manager's configuration into the live object and records
which fields each manager owns (``fieldsV1`` from :mod:`fieldpath`); a
field another manager owns is a conflict unless forced. Every other write
updates ownership too (:func:`record_update`). The field-by-field walking
(field sets, comparison, merge, removal) is :mod:`structured`; the patch
algorithms are :mod:`patch`.

Everything here is pure: inputs are never mutated, the clock is passed in as
``now``, and a conflict is an :class:`ApplyConflict` the server answers 409
with ``FieldManagerConflict`` causes.

What the server is expected to do around these functions:
- check ``metadata.resourceVersion``/``uid`` preconditions of an apply body
  before calling :func:`server_side_apply` (the body's copies are ignored);
- set uid, resourceVersion, generation and creationTimestamp afterwards;
- for a write to the main resource of a kind with a status subresource, keep
  the old ``status``; for ``/status``, keep everything but ``status`` and
  ``metadata``. Field ownership already ignores the other half (pass
  ``status_subresource=False`` for a CRD without the status subresource).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from disvc.testing.apiserver import fieldpath
from disvc.testing.apiserver.fieldpath import FieldSet
from disvc.testing.apiserver.listtypes import ListKeys
from disvc.testing.apiserver.structured import STRIPPED_META, Walk, compare, field_set, merge, remove

__all__ = ["ApplyConflict", "record_update", "server_side_apply"]


class ApplyConflict(Exception):
    """An apply would change fields another manager owns (and force was off)."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        """(manager, field path like ``.spec.replicas``), sorted."""
        described = ", ".join(f'conflict with "{manager}": {path}' for manager, path in conflicts)
        super().__init__(f"Apply failed with {len(conflicts)} conflict(s): {described}")


# --------------------------------------------------------------------------
# managedFields bookkeeping

_ManagerId = tuple[str, str, str]
"""(manager, operation, subresource): one managedFields entry."""


@dataclass(slots=True)
class _Entry:
    fields: FieldSet
    api_version: str
    time: str | None


def _read_managed(obj: dict[str, Any] | None) -> dict[_ManagerId, _Entry]:
    managed: dict[_ManagerId, _Entry] = {}
    for raw in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if not isinstance(raw, dict) or "manager" not in raw:
            continue
        ident = (raw["manager"], raw.get("operation", "Update"), raw.get("subresource", ""))
        fields = fieldpath.from_fields_v1(raw.get("fieldsV1") or {})
        previous = managed.get(ident)
        if previous is not None:
            fields = previous.fields | fields
        managed[ident] = _Entry(fields, raw.get("apiVersion", ""), raw.get("time"))
    return managed


def _write_managed(obj: dict[str, Any], managed: dict[_ManagerId, _Entry]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for (manager, operation, subresource), entry in managed.items():
        if not entry.fields:
            continue
        encoded: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": entry.api_version}
        if entry.time is not None:
            encoded["time"] = entry.time
        encoded["fieldsType"] = "FieldsV1"
        encoded["fieldsV1"] = fieldpath.to_fields_v1(entry.fields)
        if subresource:
            encoded["subresource"] = subresource
        entries.append(encoded)
    # Kubernetes' order: operation, then time, manager, apiVersion, subresource.
    entries.sort(
        key=lambda e: (e["operation"], e.get("time") or "", e["manager"], e["apiVersion"], e.get("subresource", ""))
    )
    out = dict(obj)
    metadata = dict(out.get("metadata") or {})
    if entries:
        metadata["managedFields"] = entries
    else:
        metadata.pop("managedFields", None)
    out["metadata"] = metadata
    return out


def _without_managed(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}


def _strip_applied(walk: Walk, applied: dict[str, Any]) -> dict[str, Any]:
    """The applied configuration without what this endpoint does not manage."""
    out = {
        name: copy.deepcopy(item)
        for name, item in applied.items()
        if name in {"apiVersion", "kind"} or not walk.is_ignored_top(name)
    }
    metadata = applied.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {
            name: copy.deepcopy(item)
            for name, item in metadata.items()
            if name not in STRIPPED_META or name in {"name", "namespace"}
        }
    return out


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    now: str,
    subresource: str = "",
    list_keys: ListKeys,
    status_subresource: bool = True,
) -> dict[str, Any]:
    """Apply a configuration as ``manager``; returns the new object.

    ``applied`` may still contain server-owned fields (uid, resourceVersion,
    managedFields, ...) and the other half of a status-subresource kind:
    they are ignored here. The result is ``live`` (or the config when
    creating) merged with the config, minus fields this manager applied
    before and no longer applies that nobody else owns, with
    ``metadata.managedFields`` updated. Raises :class:`ApplyConflict` when
    the config changes fields other managers own and ``force`` is False.
    An apply that changes nothing returns an object equal to ``live``.
    """
    walk = Walk(list_keys, subresource, status_subresource)
    config = _strip_applied(walk, applied)
    managed = _read_managed(live)
    base = _without_managed(live) if live is not None else {}
    ident: _ManagerId = (manager, "Apply", subresource)
    last = managed.get(ident)
    applied_set = field_set(walk, config)

    merged = merge(walk, base, config, ()) if live is not None else config
    if last is not None:
        others: FieldSet = frozenset().union(*(e.fields for i, e in managed.items() if i != ident))
        kept = others | applied_set
        kept_parents = fieldpath.prefixes(kept)
        stale = [p for p in last.fields - applied_set if p not in others and p not in kept_parents]
        merged = remove(walk, merged, stale, set(kept) | kept_parents)

    comparison = compare(walk, base, merged)
    changed = comparison.added | comparison.modified
    conflicts: list[tuple[str, str]] = []
    for other, entry in managed.items():
        if other == ident:
            continue
        for path in entry.fields & changed:
            conflicts.append((other[0], fieldpath.describe(path)))
    if conflicts and not force:
        raise ApplyConflict(sorted(set(conflicts)))

    for other, entry in list(managed.items()):
        if other != ident:
            entry.fields = entry.fields - changed - comparison.removed
    api_version = str(applied.get("apiVersion") or (live or {}).get("apiVersion") or "")
    object_changed = live is None or merged != base
    time = now if object_changed or last is None else last.time
    managed[ident] = _Entry(applied_set, api_version, time)
    return _write_managed(merged, managed)


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    now: str,
    subresource: str = "",
    list_keys: ListKeys,
    status_subresource: bool = True,
) -> dict[str, Any]:
    """Record a create/update/patch by ``manager`` in ``new``'s managedFields.

    Fields that appeared or changed become owned by (manager, Update,
    subresource) and leave every other set (updates never conflict); removed
    fields leave every set; empty entries are dropped. ``new``'s own
    ``managedFields`` are ignored: ownership continues from ``old``'s.
    """
    walk = Walk(list_keys, subresource, status_subresource)
    managed = _read_managed(old)
    before = _without_managed(old) if old is not None else {}
    after = _without_managed(new)
    comparison = compare(walk, before, after)
    changed = frozenset(comparison.added | comparison.modified)
    removed = frozenset(comparison.removed)
    ident: _ManagerId = (manager, "Update", subresource)
    for entry in managed.values():
        entry.fields = entry.fields - changed - removed
    previous = managed.get(ident)
    if changed:
        fields = ((previous.fields if previous else fieldpath.EMPTY) | changed) - removed
        managed[ident] = _Entry(fields, str(new.get("apiVersion") or ""), now)
    elif previous is not None:
        # Nothing newly owned: the entry keeps its time (Kubernetes does too).
        previous.fields = previous.fields - removed
    return _write_managed(after, managed)
