"""How the child caches find a DISVC's children without a scan.

Two indexes over the ISVC, Service and Ingress caches, passed to their
stores by the manager: ``BY_OWNER`` files a child under the uid of the
DISVC its controller ownerReference names; ``BY_DISVC_LABEL`` under the key
(``namespace/name``) of the DISVC its ``disvc`` label names. The reader
asks both: a labelled child owned by someone else is a conflict the
builders must see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from disvc.builders import names, ownership
from disvc.builders.types import Obj, ObjectKey
from disvc.controller.store import IndexFunc

BY_OWNER: Final = "by_owner"
BY_DISVC_LABEL: Final = "by_disvc_label"


def owner_uid(obj: Obj) -> list[str]:
    """The uid of the DISVC that controls ``obj``, if one does."""
    ref = ownership.controlling_disvc(obj)
    return [str(ref["uid"])] if ref is not None and ref.get("uid") else []


def disvc_label_key(obj: Obj) -> list[str]:
    """The key of the DISVC the ``disvc`` label names, if it names one."""
    meta = obj["metadata"]
    value = (meta.get("labels") or {}).get(names.DISVC_LABEL)
    return [str(ObjectKey(meta.get("namespace", ""), value))] if value else []


CHILD_INDEXERS: Final[Mapping[str, IndexFunc]] = {
    BY_OWNER: owner_uid,
    BY_DISVC_LABEL: disvc_label_key,
}
