"""GET of one object, and LIST with selectors and paging.

A LIST answers at the store's current resourceVersion; ``limit`` cuts it
into pages linked by an opaque ``continue`` token that remembers the list's
resourceVersion and the last key, and expires (410) once that version leaves
the watch window, as etcd compaction expires a real one.
"""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from disvc.testing.apiserver import errors, tables
from disvc.testing.apiserver.handlers.response import dump, encoder, json_response, list_response
from disvc.testing.apiserver.requestinfo import Call, Query
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import FieldSelector, LabelSelector, Obj, Selection, SelectorError, Stored
from disvc.testing.apiserver.store import Store
from disvc.testing.apiserver.watch import TooOld


def selection(call: Call, rt: ResourceType, query: Query) -> Selection:
    """What a LIST, WATCH or DELETE collection selects: scope and selectors."""
    try:
        labels = LabelSelector.parse(query.get("labelSelector"))
        fields = FieldSelector.parse(query.get("fieldSelector"), rt.field_labels)
    except SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc
    namespace = call.namespace if rt.namespaced and call.namespace else None
    return Selection(rt.key, namespace, labels, fields)


def _as_version(rt: ResourceType, stored: Stored) -> Obj:
    obj = stored.obj
    return obj if obj.get("apiVersion", rt.api_version) == rt.api_version else dict(obj, apiVersion=rt.api_version)


def _table_response(doc: Obj) -> web.Response:
    return json_response(dump(doc), headers={"Content-Type": tables.TABLE_MEDIA_TYPE})


def get(store: Store, call: Call, rt: ResourceType, query: Query, accept: str) -> web.Response:
    stored = store.require(rt, call.namespace, call.name)
    if tables.wants_table(accept):
        return _table_response(tables.table(
            tables.printer(rt), [_as_version(rt, stored)], include=tables.include_object(query.get("includeObject")),
            list_meta={"resourceVersion": stored.obj["metadata"].get("resourceVersion", "")},
        ))
    return json_response(encoder(rt)(stored))


def list_objects(store: Store, call: Call, rt: ResourceType, query: Query, accept: str) -> web.Response:
    chosen = selection(call, rt, query)
    requested_rv = query.resource_version()
    match = query.get("resourceVersionMatch")
    if requested_rv is not None and match in ("NotOlderThan", "Exact"):
        try:
            store.hub.check_not_too_old(rt.key, requested_rv)
        except TooOld as exc:
            raise errors.expired(str(exc)) from exc
    list_rv = store.storage.resource_version
    start_after: tuple[str, str] | None = None
    token = query.get("continue")
    if token:
        list_rv, start_after = _decode_continue(store, rt, token)
    limit = query.integer("limit") or 0
    items: list[Stored] = []
    next_key: tuple[str, str] | None = None
    remaining = 0
    for stored in store.storage.objects(rt.key, chosen.namespace):
        meta = stored.obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if start_after is not None and key <= start_after:
            continue
        if not chosen.matches(key[0], stored):
            continue
        if limit and len(items) >= limit:
            remaining += 1
            continue
        items.append(stored)
        next_key = key
    list_meta: Obj = {"resourceVersion": str(list_rv)}
    if remaining and next_key is not None:
        token_body = dump({"rv": list_rv, "start": list(next_key)})
        list_meta["continue"] = base64.urlsafe_b64encode(token_body).decode()
        list_meta["remainingItemCount"] = remaining
    if tables.wants_table(accept):
        return _table_response(tables.table(
            tables.printer(rt), [_as_version(rt, s) for s in items],
            include=tables.include_object(query.get("includeObject")), list_meta=list_meta,
        ))
    encode = encoder(rt)
    extra = tuple(b'"' + k.encode() + b'":' + dump(v) for k, v in list_meta.items() if k != "resourceVersion")
    return list_response(rt, list_rv, [encode(s) for s in items], extra)


def _decode_continue(store: Store, rt: ResourceType, token: str) -> tuple[int, tuple[str, str]]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        rv, start = int(decoded["rv"]), decoded["start"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc
    try:
        store.hub.check_not_too_old(rt.key, rv)
    except TooOld as exc:
        raise errors.expired(
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter, or use the continue "
            "token in this response to retrieve the remainder of the results."
        ) from exc
    return rv, (str(start[0]), str(start[1]))
