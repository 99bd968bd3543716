"""The ``scale`` subresource: a custom resource's replica count as ``autoscaling/v1 Scale``.

The CRD says where the numbers live (``specReplicasPath``,
``statusReplicasPath``, ``labelSelectorPath``); a GET reads them into a
Scale, a PUT or PATCH of the Scale writes ``spec.replicas`` back through the
generic store (so generation, managedFields and watches follow).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from disvc.testing.apiserver import errors
from disvc.testing.apiserver.handlers import request as req
from disvc.testing.apiserver.handlers.patch import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, apply_patch
from disvc.testing.apiserver.handlers.response import dump, json_response
from disvc.testing.apiserver.requestinfo import Call, Query
from disvc.testing.apiserver.resources import ResourceType, ScalePaths
from disvc.testing.apiserver.storage import Obj, Stored
from disvc.testing.apiserver.store import Store
from disvc.testing.apiserver.validation import Cause


def _path_get(obj: Obj, path: str) -> Any:
    node: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _path_set(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    node = obj
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _scale_of(paths: ScalePaths, obj: Obj) -> Obj:
    meta = obj["metadata"]
    status: Obj = {"replicas": _path_get(obj, paths.status_replicas) or 0}
    if paths.label_selector:
        selector = _path_get(obj, paths.label_selector)
        if selector:
            status["selector"] = selector
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": _path_get(obj, paths.spec_replicas) or 0},
        "status": status,
    }


async def scale(store: Store, request: web.BaseRequest, call: Call, rt: ResourceType, query: Query) -> web.Response:
    paths = rt.scale
    assert paths is not None
    old = store.require(rt, call.namespace, call.name)
    current = _scale_of(paths, old.obj)
    if request.method == "GET":
        return json_response(dump(current))
    if request.method == "PUT":
        wanted = await req.body(request)
    elif request.method == "PATCH":
        content_type = request.content_type
        if content_type == APPLY_PATCH or content_type not in (JSON_PATCH, MERGE_PATCH, "application/strategic-merge-patch+json"):
            raise errors.unsupported_media_type(content_type, [JSON_PATCH, MERGE_PATCH])
        wanted = apply_patch(content_type if content_type == JSON_PATCH else MERGE_PATCH, current, await request.read(), "Scale")
    else:
        raise errors.method_not_allowed()
    _check_precondition(rt, old, wanted)
    replicas = (wanted.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.invalid(rt, call.name, [Cause(
            "FieldValueInvalid", "spec.replicas",
            f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0",
        )])
    new = old.copy()
    _path_set(new, paths.spec_replicas, replicas)
    obj, _ = store.commit(
        rt, call.namespace, old, new, subresource="",
        manager=req.field_manager(query, request.headers.get("User-Agent", "")), dry_run=req.dry_run(query),
    )
    return json_response(dump(_scale_of(paths, obj)))


def _check_precondition(rt: ResourceType, old: Stored, wanted: Obj) -> None:
    rv = (wanted.get("metadata") or {}).get("resourceVersion")
    if rv and str(rv) != old.obj["metadata"]["resourceVersion"]:
        raise errors.stale(rt, old.obj["metadata"]["name"])
