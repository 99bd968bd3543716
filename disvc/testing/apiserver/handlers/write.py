"""POST and PUT: a whole object, checked against the URL before the store sees it.

The body's apiVersion and kind must be the URL's type, its namespace the
URL's namespace, and (for PUT) its name the URL's name, or the request is a
400, worded as the API server words it. Then the generic store creates or
replaces the object.
"""

from __future__ import annotations

from aiohttp import web

from disvc.testing.apiserver import errors
from disvc.testing.apiserver.handlers import request as req
from disvc.testing.apiserver.handlers.response import object_response
from disvc.testing.apiserver.requestinfo import Call, Query
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Obj
from disvc.testing.apiserver.store import Store


def check_type(rt: ResourceType, obj: Obj) -> None:
    """The body is of the URL's type; fills apiVersion, kind and metadata if absent."""
    api_version = obj.get("apiVersion")
    if api_version and api_version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
        )
    kind = obj.get("kind")
    if kind and kind != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}


def check_namespace(rt: ResourceType, call: Call, obj: Obj) -> None:
    meta = obj["metadata"]
    if not rt.namespaced:
        meta.pop("namespace", None)
        return
    body_ns = meta.get("namespace")
    if body_ns and body_ns != call.namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = call.namespace


def check_identity(rt: ResourceType, call: Call, obj: Obj, *, name_required: bool) -> None:
    """The body names the URL's object (or, unless ``name_required``, leaves the name to it)."""
    check_type(rt, obj)
    meta = obj["metadata"]
    if (name_required or meta.get("name")) and meta.get("name") != call.name:
        raise errors.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL ({call.name})"
        )
    meta["name"] = call.name
    check_namespace(rt, call, obj)


def create(store: Store, call: Call, rt: ResourceType, body: Obj, query: Query, user_agent: str) -> web.Response:
    if call.subresource:
        raise errors.method_not_allowed()
    check_type(rt, body)
    check_namespace(rt, call, body)
    obj = store.create(
        rt, call.namespace, body, manager=req.field_manager(query, user_agent),
        dry_run=req.dry_run(query), strict=req.is_strict(query),
    )
    return object_response(rt, obj, 201)


def update(store: Store, call: Call, rt: ResourceType, body: Obj, query: Query, user_agent: str) -> web.Response:
    check_identity(rt, call, body, name_required=False)
    obj, created = store.update(
        rt, call.namespace, call.name, call.subresource, body,
        manager=req.field_manager(query, user_agent), dry_run=req.dry_run(query), strict=req.is_strict(query),
    )
    return object_response(rt, obj, 201 if created else 200)
