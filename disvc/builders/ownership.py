"""Who controls a child: the controller ownerReference to the DISVC.

Every child carries one, so deleting the DISVC garbage-collects its children
and so the controller can tell its own objects from foreign ones with a
clashing name (which it must never modify or delete).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from disvc.builders.types import DISVC_API_VERSION, DISVC_KIND, Obj


def owner_reference(name: str, uid: str) -> dict[str, Any]:
    """The controller ownerReference children of DISVC ``name``/``uid`` carry.

    ``blockOwnerDeletion`` makes a foreground delete of the DISVC wait for its
    children."""
    return {
        "apiVersion": DISVC_API_VERSION,
        "kind": DISVC_KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``obj``'s controller ownerReference (``controller: true``), or None.

    An object has at most one; this is the one helper every reader of it uses
    (the builders here, the controller's cache index and event handler)."""
    meta = obj.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None


def controlling_disvc(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controller ownerReference when it names a DISVC, else None."""
    ref = controller_ref(obj)
    return ref if ref is not None and ref.get("kind") == DISVC_KIND else None


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of ``obj``'s controlling owner, or None when nothing controls it."""
    ref = controller_ref(obj)
    uid = ref.get("uid") if ref is not None else None
    return uid if isinstance(uid, str) else None


def is_controlled_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    """True when ``obj``'s controller ownerReference names the owner with ``owner_uid``."""
    return bool(owner_uid) and controller_uid(obj) == owner_uid


def is_terminating(obj: Obj) -> bool:
    """True once ``obj`` has a deletionTimestamp (finalizers may keep it around)."""
    meta = obj.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))


def child_metadata(
    owner_name: str,
    owner_uid: str,
    name: str,
    namespace: str,
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``metadata`` of a child: name, namespace, labels, annotations and the
    controller ownerReference; nothing the server sets."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    meta["ownerReferences"] = [owner_reference(owner_name, owner_uid)]
    return meta
