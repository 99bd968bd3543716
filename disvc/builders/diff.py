"""Desired vs live children -> a ``Plan`` of creates, updates, deletes, conflicts.

Desired objects are complete server-side-apply bodies carrying the
``applied-hash`` annotation (``applied``). A live object is converged when
this DISVC controls it, its applied hash matches and every field the desired
body sets has the same value live; the server may add defaults and fields of
its own, so desired is compared as a subset of live. Converged objects are
not written, which is what makes a resync of a converged DISVC write nothing.

Objects with a desired name that this DISVC does not control are conflicts:
never applied, never deleted. Controlled objects that nothing desires and
nothing keeps are deleted, replica ISVCs highest index first.

``after_plan`` predicts the live children once a plan is written, so the
status can describe the world the plan leaves behind.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from disvc.builders import names, ownership, quantity
from disvc.builders.types import ChildKind, ChildRef, Obj, child_kind

ChildId: TypeAlias = tuple[ChildKind, str]
"""``(kind, name)``: how desired and live children are matched (one namespace)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What to write, in order: creates and updates first, then deletes."""

    create: tuple[Obj, ...] = ()
    """Desired objects with no live counterpart (server-side apply creates them)."""
    update: tuple[Obj, ...] = ()
    """Desired objects whose live counterpart we control and that drifted."""
    delete: tuple[ChildRef, ...] = ()
    """Live children we control that nothing desired or kept names any more."""
    conflicts: tuple[Obj, ...] = ()
    """Live objects that hold a desired name but that this DISVC does not control."""

    @property
    def is_empty(self) -> bool:
        return not (self.create or self.update or self.delete)


_IDENTITY_FIELDS = frozenset({"apiVersion", "kind"})
_DELETE_ORDER: dict[ChildKind, int] = {
    # routes first, then what they route to: a canary dropped in one plan
    # (an aborted analysis, a revert) must not be routed to while its
    # Service has no endpoints left (ingress-nginx answers 503 then)
    "HTTPRoute": 0,
    "GRPCRoute": 0,
    "Ingress": 1,
    "InferenceService": 2,
    "Service": 3,
    "ControllerRevision": 4,
}


def applied(body: Obj) -> Obj:
    """``body`` with its ``applied-hash`` annotation: the hash of the body itself.

    Returns a new top-level dict and metadata; the rest is shared with ``body``."""
    hash_ = names.content_hash(body)
    original = body["metadata"]
    meta = {k: v for k, v in original.items() if k not in ("annotations", "ownerReferences")}
    meta["annotations"] = {**original.get("annotations", {}), names.APPLIED_HASH_ANNOTATION: hash_}
    if "ownerReferences" in original:
        meta["ownerReferences"] = original["ownerReferences"]
    return {**body, "metadata": meta}


def child_id(obj: Obj) -> ChildId | None:
    kind = child_kind(obj)
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if kind is None or not isinstance(name, str):
        return None
    return (kind, name)


_SCALARS = (str, int, float, bool, type(None))
_QUANTITY_MAPS = frozenset({"limits", "requests"})
"""Keys whose maps hold resource quantities (a container's ``resources``):
their values compare by value, as the API server keeps them as written."""


def is_subset(want: Any, have: Any) -> bool:
    """True when every field ``want`` sets has an equal value in ``have``.

    Dicts compare recursively; lists must have the same length and compare
    element-wise, because the server never adds list items of its own. The
    values of a ``limits`` or ``requests`` map are quantities (``2Gi`` equals
    ``2048Mi``, ``1`` equals ``"1"``)."""
    # Checked in order of frequency, scalars first: this runs over every
    # field of every desired child on every reconcile, and an abc check
    # (``isinstance(x, Mapping)``) on a string costs ten times a type lookup.
    if type(want) in _SCALARS:
        # bool is an int subclass: True must not match 1
        return isinstance(want, bool) == isinstance(have, bool) and bool(want == have)
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return False
        for w, h in zip(want, have):
            if not is_subset(w, h):
                return False
        return True
    # dict first: isinstance tries the tuple in order, and the abc check is slow.
    if isinstance(want, (dict, Mapping)):
        if not isinstance(have, (dict, Mapping)):
            return False
        for key, value in want.items():
            if key not in have:
                return False
            if type(value) is dict and key in _QUANTITY_MAPS:
                if not _quantities_subset(value, have[key]):
                    return False
            elif not is_subset(value, have[key]):
                return False
        return True
    return bool(want == have)


def _quantities_subset(want: dict[str, Any], have: Any) -> bool:
    if not isinstance(have, (dict, Mapping)):
        return False
    return all(name in have and quantity.equal(amount, have[name]) for name, amount in want.items())


def is_converged(want: Obj, have: Obj, owner_uid: str) -> bool:
    """True when writing ``want`` over ``have`` would change nothing we care about.

    apiVersion and kind are left out: they matched already, and list items
    from the API carry neither."""
    return ownership.is_controlled_by(have, owner_uid) and all(
        key in _IDENTITY_FIELDS or (key in have and is_subset(value, have[key]))
        for key, value in want.items()
    )


def plan(
    desired: Sequence[Obj],
    live: Sequence[Obj],
    owner_uid: str,
    keep: Collection[ChildId] = (),
) -> Plan:
    """What to write so that ``live`` becomes ``desired``.

    ``keep`` names live children to leave untouched though nothing desires
    them (the serving generation during a rollout). Terminating objects are
    neither applied (an apply cannot stop a delete) nor deleted again; their
    deletion event triggers the next reconcile."""
    live_by_id: dict[ChildId, Obj] = {}
    for obj in live:
        id_ = child_id(obj)
        if id_ is None:
            continue
        # a name held by our object wins over a stale duplicate from elsewhere
        if id_ not in live_by_id or ownership.is_controlled_by(obj, owner_uid):
            live_by_id[id_] = obj

    create: list[Obj] = []
    update: list[Obj] = []
    conflicts: list[Obj] = []
    wanted: set[ChildId] = set()
    for want in desired:
        id_ = (want["kind"], want["metadata"]["name"])
        wanted.add(id_)
        have = live_by_id.get(id_)
        if have is None:
            create.append(want)
        elif not ownership.is_controlled_by(have, owner_uid):
            conflicts.append(have)
        elif ownership.is_terminating(have):
            continue
        elif not is_converged(want, have, owner_uid):
            update.append(want)

    delete = [
        obj
        for id_, obj in live_by_id.items()
        if id_ not in wanted
        and id_ not in keep
        and ownership.is_controlled_by(obj, owner_uid)
        and not ownership.is_terminating(obj)
    ]
    refs = sorted((_child_ref(obj) for obj in delete), key=_delete_order)
    return Plan(tuple(create), tuple(update), tuple(refs), tuple(conflicts))


def after_plan(live: Sequence[Obj], plan: Plan) -> list[Obj]:
    """``live`` as it will be once ``plan`` is written: deleted children gone,
    created ones present without status, updated ones keeping their status."""
    gone = {(ref.kind, ref.name) for ref in plan.delete}
    written = {child_id(obj): obj for obj in (*plan.create, *plan.update)}
    after: list[Obj] = []
    for obj in live:
        child = child_id(obj)
        if child in gone:
            continue
        new = written.pop(child, None)
        if new is None:
            after.append(obj)
        elif "status" in obj:
            after.append({**new, "status": obj["status"]})
        else:
            after.append(new)
    after.extend(written.values())
    return after


def _child_ref(obj: Obj) -> ChildRef:
    kind = child_kind(obj)
    assert kind is not None  # only identified children reach here
    meta = obj["metadata"]
    return ChildRef(
        kind=kind,
        namespace=meta.get("namespace", ""),
        name=meta["name"],
        uid=meta.get("uid", ""),
        resource_version=meta.get("resourceVersion", ""),
    )


def _delete_order(ref: ChildRef) -> tuple[int, str, int]:
    # replicas go highest index first: a scale-down keeps the lowest indices,
    # the same ones a scale-up would create
    prefix, _, index = ref.name.rpartition("-")
    if ref.kind == "InferenceService" and index.isdigit():
        return (_DELETE_ORDER[ref.kind], prefix, -int(index))
    return (_DELETE_ORDER[ref.kind], ref.name, 0)
