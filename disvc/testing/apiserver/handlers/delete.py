"""DELETE of one object or of a selected collection.

Preconditions (uid, resourceVersion) are checked first; a dry run answers
with the object unchanged. The store deletes, or marks the object while
finalizers remain. A finished delete is answered as the API server answers
it for that type: with the object (custom resources, Services) or with a
Success Status (other built-ins).
"""

from __future__ import annotations

from aiohttp import web

from disvc.testing.apiserver import errors
from disvc.testing.apiserver.handlers import request as req
from disvc.testing.apiserver.handlers.get import selection
from disvc.testing.apiserver.handlers.response import dump, json_response, list_response, object_response
from disvc.testing.apiserver.requestinfo import Call, Query
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Obj
from disvc.testing.apiserver.store import Store


def _policy(query: Query, options: Obj) -> str:
    return query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"


def delete(store: Store, call: Call, rt: ResourceType, options: Obj, query: Query) -> web.Response:
    old = store.require(rt, call.namespace, call.name)
    meta = old.obj["metadata"]
    preconditions = options.get("preconditions") or {}
    uid = preconditions.get("uid")
    if uid and uid != meta.get("uid"):
        raise errors.delete_precondition_failed(rt, call.name, "UID", uid, meta.get("uid", ""))
    rv = preconditions.get("resourceVersion")
    if rv and rv != meta.get("resourceVersion"):
        raise errors.delete_precondition_failed(rt, call.name, "ResourceVersion", rv, meta.get("resourceVersion", ""))
    if req.dry_run(query) or options.get("dryRun") == ["All"]:
        return object_response(rt, old.obj)
    obj, finished = store.delete(rt, old, _policy(query, options))
    if finished and not store.strategy(rt).return_deleted_object:
        details: Obj = {"name": call.name, "kind": rt.plural, "uid": meta.get("uid")}
        if rt.group:
            details["group"] = rt.group
        return json_response(dump({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success", "details": details,
        }))
    return object_response(rt, obj)


def delete_collection(store: Store, call: Call, rt: ResourceType, options: Obj, query: Query) -> web.Response:
    chosen = selection(call, rt, query)
    dry_run = req.dry_run(query)
    policy = _policy(query, options)
    deleted: list[bytes] = []
    for stored in store.storage.objects(rt.key, chosen.namespace):
        if not chosen.matches(stored.obj["metadata"].get("namespace", ""), stored):
            continue
        if dry_run:
            deleted.append(stored.raw())
            continue
        obj, _ = store.delete(rt, stored, policy)
        deleted.append(dump(obj))
    return list_response(rt, store.storage.resource_version, deleted)
