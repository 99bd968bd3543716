"""The transform the controller's caches apply: a compact copy of each object.

Cached objects are stored without ``metadata.managedFields`` (nothing in the
controller reads them, and they often double an object's size) and with
interned strings: every watch event decodes its own copy of every key
("metadata", "apiVersion", "serving.kserve.io/template-hash", ...), and
sharing one string per distinct key roughly halves what a cached object
costs. A copy rather than a mutation: our own writes hand in objects their
caller keeps.
"""

from __future__ import annotations

import sys
from typing import Final

from disvc.builders.types import Obj

SHARED_VALUE_LENGTH: Final = 48
"""String values up to this length are interned too: kinds, API versions,
namespaces, label values and condition words repeat across thousands of
objects, while long values (storage URIs, messages) rarely do."""


def compact(obj: Obj) -> Obj:
    """A copy without ``managedFields``, with one shared string per distinct key."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return {sys.intern(k): _interned(v) for k, v in obj.items()}


def _interned(value: object) -> object:
    if isinstance(value, dict):
        return {sys.intern(k): _interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interned(v) for v in value]
    if isinstance(value, str) and len(value) <= SHARED_VALUE_LENGTH:
        return sys.intern(value)
    return value
