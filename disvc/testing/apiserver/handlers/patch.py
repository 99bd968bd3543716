"""PATCH: the three patch types, and server-side apply.

The content type picks the algorithm (:mod:`disvc.testing.apiserver.patch`
for merge, JSON and strategic merge patches; :mod:`disvc.testing.apiserver.apply`
for ``application/apply-patch+yaml``). The patched object must still name
the URL's object; an apply may create it. A patch carrying a
resourceVersion is a precondition, as on the real server.
"""

from __future__ import annotations

import json
from typing import Final

from aiohttp import web

from disvc.testing.apiserver import apply, clock, errors, patch
from disvc.testing.apiserver.errors import ApiError
from disvc.testing.apiserver.handlers import request as req
from disvc.testing.apiserver.handlers.response import object_response
from disvc.testing.apiserver.handlers.write import check_identity
from disvc.testing.apiserver.requestinfo import Call, Query
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Obj, Stored
from disvc.testing.apiserver.store import Store

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
STRATEGIC_PATCH: Final = "application/strategic-merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"


def apply_patch(content_type: str, target: Obj, raw: bytes, kind: str) -> Obj:
    """``target`` patched by ``raw`` of ``content_type`` (not apply)."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"error decoding patch: {exc}") from exc
    try:
        if content_type == JSON_PATCH:
            if not isinstance(body, list):
                raise errors.bad_request("json patch must be a list of operations")
            return patch.json_patch(target, body)
        if not isinstance(body, dict):
            raise errors.bad_request("the patch must be a JSON object")
        if content_type == MERGE_PATCH:
            return patch.merge_patch(target, body)
        return patch.strategic_merge_patch(target, body, kind)
    except patch.PatchError as exc:
        raise ApiError(422, "Invalid", str(exc), {}) from exc


def patch_object(
    store: Store, call: Call, rt: ResourceType, content_type: str, raw: bytes, query: Query, user_agent: str
) -> web.Response:
    accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
    if store.strategy(rt).strategic_merge:
        accepted.insert(2, STRATEGIC_PATCH)
    if content_type not in accepted:
        raise errors.unsupported_media_type(content_type, accepted)
    if content_type != APPLY_PATCH and query.get("force") is not None:
        raise req.patch_options_invalid("force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch")
    dry_run = req.dry_run(query)
    old = store.storage.get(rt.key, call.namespace, call.name)
    if content_type == APPLY_PATCH:
        return _apply(store, call, rt, old, raw, query, dry_run)
    if old is None:
        raise errors.not_found(rt, call.name)
    patched = apply_patch(content_type, old.copy(), raw, rt.kind)
    if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
        raise errors.bad_request("the patch removed the object's metadata")
    patched = dict(patched, metadata=dict(patched["metadata"]))
    rv = patched["metadata"].get("resourceVersion")
    if rv and rv != old.obj["metadata"]["resourceVersion"]:
        raise errors.stale(rt, call.name)
    check_identity(rt, call, patched, name_required=True)
    obj, _ = store.commit(
        rt, call.namespace, old, patched, subresource=call.subresource,
        manager=req.field_manager(query, user_agent), dry_run=dry_run, strict=req.is_strict(query),
    )
    return object_response(rt, obj)


def _apply(
    store: Store, call: Call, rt: ResourceType, old: Stored | None, raw: bytes, query: Query, dry_run: bool
) -> web.Response:
    manager = query.get("fieldManager")
    if not manager:
        raise req.patch_options_invalid("fieldManager", "FieldValueRequired", "Required value: is required for apply patch")
    try:
        applied = json.loads(raw)
    except ValueError:
        applied = req.decode_yaml(raw)
    if not isinstance(applied, dict):
        raise errors.bad_request("the apply configuration must be an object")
    if not applied.get("apiVersion") or not applied.get("kind"):
        raise errors.bad_request("apply configurations must set apiVersion and kind")
    check_identity(rt, call, applied, name_required=False)
    if old is None:
        if call.subresource:
            raise errors.not_found(rt, call.name)
        store.require_namespace_open(rt, call.namespace, call.name)
    else:
        rv = applied["metadata"].get("resourceVersion")
        if rv and rv != old.obj["metadata"]["resourceVersion"]:
            raise errors.stale(rt, call.name)
    try:
        result = apply.server_side_apply(
            old.copy() if old is not None else None, applied,
            manager=manager, force=query.flag("force"), now=clock.now(),
            subresource=call.subresource, list_keys=store.strategy(rt).list_keys(),
            status_subresource=rt.status_subresource,
        )
    except apply.ApplyConflict as exc:
        raise _apply_conflict(rt, call.name, exc.conflicts) from exc
    result = dict(result, metadata=dict(result.get("metadata") or {}))
    result["metadata"]["name"] = call.name
    if rt.namespaced:
        result["metadata"]["namespace"] = call.namespace
    obj, created = store.commit(
        rt, call.namespace, old, result, subresource=call.subresource, manager=None, dry_run=dry_run,
        strict=req.is_strict(query),
    )
    return object_response(rt, obj, 201 if created else 200)


def _apply_conflict(rt: ResourceType, name: str, conflicts: list[tuple[str, str]]) -> ApiError:
    count = len(conflicts)
    lines = [f'conflict with "{manager}": {path}' for manager, path in conflicts]
    summary = lines[0] if count == 1 else "\n".join(f"- {line}" for line in lines)
    plural = "conflict" if count == 1 else "conflicts"
    details: Obj = {"name": name, "kind": rt.plural, "causes": [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{manager}"', "field": path}
        for manager, path in conflicts
    ]}
    if rt.group:
        details["group"] = rt.group
    return ApiError(409, "Conflict", f"Apply failed with {count} {plural}: {summary}", details)
