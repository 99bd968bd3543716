"""Kubernetes ``v1 Status`` failures, shaped as the real API server sends them.

Clients branch on ``reason`` and ``code`` (client-go's ``IsNotFound``,
``IsConflict``, ``IsResourceExpired``; the Python client's ``ApiException``
status), and people read ``message``; both must look like a real cluster's
or a test that passes here could fail there.  Each constructor below builds
one reason with the message wording Kubernetes uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from disvc.testing.apiserver.resources import ResourceType

Obj = dict[str, Any]


class CauseLike(Protocol):
    """What the validation module's ``Cause`` provides."""

    @property
    def type(self) -> str: ...
    @property
    def field(self) -> str: ...
    @property
    def message(self) -> str: ...


class ApiError(Exception):
    """A failed request: raise it anywhere in a handler to answer with a Status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Obj | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]  # as kube-apiserver passes on a storage error it has no reason for
        if self.details:
            body["details"] = self.details
        return body

    def body(self) -> bytes:
        return json.dumps(self.status(), separators=(",", ":")).encode()


def _details(rt: ResourceType, name: str, *, kind: str | None = None) -> Obj:
    details: Obj = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = kind if kind is not None else rt.plural
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified_resource} "{name}" not found', _details(rt, name))


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'namespaces "{namespace}" not found',
        {"name": namespace, "kind": "namespaces"},
    )


def unknown_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{rt.qualified_resource} "{name}" already exists', _details(rt, name)
    )


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified_resource} "{name}": {why}',
        _details(rt, name),
    )


def delete_precondition_failed(rt: ResourceType, name: str, field: str, wanted: str, found: str) -> ApiError:
    """A delete whose ``preconditions`` do not hold. The real server names the
    *kind* here (not the resource, as other conflicts do)."""
    hint = "deleted and then recreated" if field == "UID" else "modified"
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified_kind} "{name}": the {field} in the precondition '
        f"({wanted}) does not match the {field} in record ({found}). The object might have been {hint}",
        _details(rt, name, kind=rt.kind),
    )


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def stale(rt: ResourceType, name: str) -> ApiError:
    return conflict(rt, name, STALE)


def invalid(rt: ResourceType, name: str, causes: Sequence[CauseLike]) -> ApiError:
    rendered = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    details = _details(rt, name, kind=rt.kind)
    details["causes"] = [
        {"reason": c.type, "message": c.message, "field": c.field} for c in causes
    ]
    return ApiError(422, "Invalid", f'{rt.qualified_kind} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_media_type(content_type: str, accepted: Sequence[str]) -> ApiError:
    return ApiError(
        415, "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
        {},
    )


def forbidden(rt: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        403, "Forbidden", f'{rt.qualified_resource} "{name}" is forbidden: {why}', _details(rt, name)
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_many_requests(retry_after: int | None, message: str | None = None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    details: Obj = {"retryAfterSeconds": retry_after} if retry_after is not None else {}
    return ApiError(
        429, "TooManyRequests",
        message or "Too many requests, please try again later.",
        details, headers,
    )


def internal(message: str, retry_after: int | None = None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    details: Obj = {"causes": [{"message": message}]}
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", details, headers)


def request_too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def storage_refused(message: str) -> ApiError:
    """etcd refused the write (an object past its size limit): a 500 without a reason."""
    return ApiError(500, "", message)


_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
    422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
    504: "Timeout",
}


def injected(code: int, retry_after: int | None, message: str | None) -> ApiError:
    """The failure a :class:`~disvc.testing.apiserver.faults.FaultRule` asks for."""
    if code == 429:
        return too_many_requests(retry_after, message)
    if code == 500:
        return internal(message or "injected fault", retry_after)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    details: Obj = {"retryAfterSeconds": retry_after} if retry_after is not None else {}
    return ApiError(
        code, _REASONS.get(code, "Unknown"), message or f"injected fault ({code})", details, headers
    )
