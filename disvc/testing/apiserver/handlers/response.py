"""Writing an answer: compact JSON bodies with the right content type.

Objects are stored once, in their storage version; an answer is encoded in
the version the request named (a custom resource read through another
served version gets that ``apiVersion``), as the API server converts on the
way out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Obj, Stored

JSON_HEADERS: Final = {"Content-Type": "application/json"}


def dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = dict(JSON_HEADERS)
    if headers:
        all_headers.update(headers)
    return web.Response(body=body, status=status, headers=all_headers)


def encoder(rt: ResourceType) -> Callable[[Stored], bytes]:
    """Encode stored objects as ``rt``'s version (custom resources: rewrite apiVersion)."""
    api_version = rt.api_version

    def encode(stored: Stored) -> bytes:
        if stored.obj.get("apiVersion", api_version) == api_version:
            return stored.raw()
        return dump(dict(stored.obj, apiVersion=api_version))

    return encode


def object_response(rt: ResourceType, obj: Obj, code: int = 200) -> web.Response:
    if obj.get("apiVersion") == rt.api_version:
        return json_response(dump(obj), code)
    return json_response(dump(dict(obj, apiVersion=rt.api_version)), code)


def list_response(rt: ResourceType, resource_version: int, items: list[bytes], extra_meta: tuple[bytes, ...] = ()) -> web.Response:
    """A ``<Kind>List`` assembled from already-encoded items (no re-encoding)."""
    meta = [b'"resourceVersion":"' + str(resource_version).encode() + b'"', *extra_meta]
    body = (
        b'{"kind":"' + rt.list_kind.encode() + b'","apiVersion":"' + rt.api_version.encode()
        + b'","metadata":{' + b",".join(meta) + b'},"items":[' + b",".join(items) + b"]}"
    )
    return json_response(body)
