"""The transforms the controller's caches apply: a compact copy of each object.

Cached objects are stored without ``metadata.managedFields`` (nothing in the
controller reads them, and they often double an object's size) and with
interned strings: every watch event decodes its own copy of every key
("metadata", "apiVersion", "serving.kserve.io/template-hash", ...), and
sharing one string per distinct key roughly halves what a cached object
costs. A copy rather than a mutation: our own writes hand in objects their
caller keeps.

Children (``compact_child``) also leave out what the server adds that the
controller never reads: their status but its ``Ready`` condition (and, for
an InferenceService, its deployment mode and Knative revisions: all the
builders look at), and a Service's allocated IPs and IP families. With
thousands of children cached this is about a sixth of the cache; a test
(tests/unit/test_compact.py) checks that no field a desired child sets is
among them, so dropping them can never make a converged child look drifted.
"""

from __future__ import annotations

import sys
from typing import Final

from disvc.builders.generation import ready_condition
from disvc.builders.knative import kept_status
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


SERVER_SET_SPEC_FIELDS: Final[dict[str, frozenset[str]]] = {
    "Service": frozenset({"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"}),
}
"""Per kind: spec fields the API server fills in and the builders never set."""


ROUTE_KINDS: Final = frozenset({"HTTPRoute", "GRPCRoute"})


def compact_child(obj: Obj) -> Obj:
    """``compact``, without the server-set fields named in the module docstring."""
    pruned = {**obj}
    if obj.get("kind") == "ControllerRevision":
        # the template is read only by the CLI; the controller needs the
        # revision's number and owner (history.py), not its template
        pruned.pop("data", None)
    if obj.get("kind") in ROUTE_KINDS and isinstance(obj.get("status"), dict):
        # what the Gateway said about the route (routestatus.py reads it)
        pruned["status"] = {"parents": [
            {"parentRef": p.get("parentRef"), "conditions": [
                {k: c[k] for k in ("type", "status", "reason", "message", "observedGeneration") if k in c}
                for c in p.get("conditions") or []
            ]}
            for p in obj["status"].get("parents") or [] if isinstance(p, dict)
        ]}
    elif obj.get("status") is not None:
        ready = ready_condition(obj)
        # an InferenceService's mode and Knative revisions, read beside Ready
        kept: Obj = kept_status(obj) if obj.get("kind") == "InferenceService" else {}
        if ready is not None:
            kept["conditions"] = [ready]
        if kept:
            pruned["status"] = kept
        else:
            del pruned["status"]
    server_set = SERVER_SET_SPEC_FIELDS.get(str(obj.get("kind")))
    spec = obj.get("spec")
    if server_set and isinstance(spec, dict):
        pruned["spec"] = {k: v for k, v in spec.items() if k not in server_set}
    return compact(pruned)


def _interned(value: object) -> object:
    if isinstance(value, dict):
        return {sys.intern(k): _interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interned(v) for v in value]
    if isinstance(value, str) and len(value) <= SHARED_VALUE_LENGTH:
        return sys.intern(value)
    return value
