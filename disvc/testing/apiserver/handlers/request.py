"""Reading a request: bodies, write options, and the writer's field manager.

Bodies arrive as JSON or YAML; write options (``dryRun``, ``fieldManager``,
``fieldValidation``) arrive as query parameters and are checked as the API
server checks them, so a client's mistake gets the same 400 here and there.
"""

from __future__ import annotations

import json
from typing import Any, Final

import yaml
from aiohttp import web

from disvc.testing.apiserver import errors
from disvc.testing.apiserver.errors import ApiError
from disvc.testing.apiserver.requestinfo import Query
from disvc.testing.apiserver.storage import Obj

try:
    _YAML_LOADER: Any = yaml.CSafeLoader
except AttributeError:  # libyaml not compiled in
    _YAML_LOADER = yaml.SafeLoader

_YAML_TYPES: Final = ("application/yaml", "application/x-yaml")
_BODY_TYPES: Final = ("application/json", "application/yaml")


def decode_json(raw: bytes) -> Obj:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object")
    return body


def decode_yaml(raw: bytes) -> Any:
    try:
        return yaml.load(raw, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc


async def body(request: web.BaseRequest) -> Obj:
    """The request's object, JSON or YAML by its content type.

    Kubernetes' protobuf encoding (newer kubectl sends it for built-in kinds
    from ``kubectl create``) is refused with 415, naming what is accepted.
    """
    if "protobuf" in request.content_type or "cbor" in request.content_type:
        raise errors.unsupported_media_type(request.content_type, _BODY_TYPES)
    raw = await request.read()
    if request.content_type in _YAML_TYPES:
        loaded = decode_yaml(raw)
        if not isinstance(loaded, dict):
            raise errors.bad_request("the request body must be an object")
        return loaded
    return decode_json(raw)


def dry_run(query: Query) -> bool:
    value = query.get("dryRun")
    if value is None:
        return False
    if value != "All":
        raise errors.bad_request(f'unsupported dry run option: "{value}"')
    return True


def is_strict(query: Query) -> bool:
    """``fieldValidation=Strict``: unknown fields fail the write instead of being dropped."""
    return query.get("fieldValidation") == "Strict"


def field_manager(query: Query, user_agent: str) -> str:
    manager = query.get("fieldManager")
    if manager:
        return manager
    # Kubernetes names an unnamed writer after its user agent's product token
    return (user_agent.split("/", 1)[0] or "unknown")[:128]


def patch_options_invalid(field_path: str, reason: str, message: str) -> ApiError:
    """PatchOptions are validated as an object of their own, as Kubernetes does."""
    return ApiError(
        422, "Invalid", f'PatchOptions.meta.k8s.io "" is invalid: {field_path}: {message}',
        {"group": "meta.k8s.io", "kind": "PatchOptions",
         "causes": [{"reason": reason, "message": message, "field": field_path}]},
    )
