"""From an HTTP response to a controller error, in one place.

An API response that is not 2xx carries a ``Status`` body; its code says
what retrying can do (``disvc.controller.errors``): 404 ``NotFoundError``,
409 ``ConflictError``, 410 ``GoneError`` (the reflector relists), 429 and
5xx ``TransientError`` with the server's ``Retry-After`` when it gave one,
anything else ``PermanentError``. A request that got no response at all (a
reset, a timeout) is transient too. Watches report the same statuses as
``ERROR`` events, mapped here by the same function.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import urllib3

from disvc.builders.types import Obj
from disvc.controller import errors

TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)
"""What a request that got no (complete) response raises."""


def check(response: urllib3.BaseHTTPResponse, what: str) -> urllib3.BaseHTTPResponse:
    """The response, unread, when it is 2xx; otherwise read it, release it and raise."""
    if 200 <= response.status < 300:
        return response
    try:
        data = response.data
    except TRANSPORT_ERRORS:
        data = b""
    finally:
        response.release_conn()
    raise status_error(response.status, decode_status(data), response.headers, what)


def status_error(code: int, status: Obj, headers: Mapping[str, str] | None, what: str) -> errors.ControllerError:
    """The controller error for an HTTP status and its ``Status`` body."""
    reason = status.get("reason") or ""
    message = f"{what}: {code} {reason}: {status.get('message', '')}".rstrip(": ")
    if code == 404:
        return errors.NotFoundError(message)
    if code == 409:
        return errors.ConflictError(message, status=code)
    if code == 410:
        return errors.GoneError(message)
    if code == 429:
        return errors.TooManyRequestsError(message, status=code, retry_after=_retry_after_seconds(status, headers))
    if code >= 500 or code == 0:
        return errors.TransientError(message, status=code, retry_after=_retry_after_seconds(status, headers))
    return errors.PermanentError(message, status=code, reason=reason or None)


def transport_error(what: str, exc: BaseException) -> errors.TransientError:
    """The error for a request that got no (complete) response."""
    return errors.TransientError(f"{what}: {type(exc).__name__}: {exc}")


def decode_status(body: bytes) -> Obj:
    """The ``Status`` object of an error body (a bare message when it is not JSON)."""
    try:
        decoded = json.loads(body) if body else {}
    except ValueError:
        return {"message": body[:200].decode("utf-8", "replace")}
    return decoded if isinstance(decoded, dict) else {}


def _retry_after_seconds(status: Obj, headers: Mapping[str, str] | None) -> float | None:
    header = headers.get("Retry-After") if headers else None
    if header:
        try:
            return float(header)
        except ValueError:
            pass  # an HTTP-date: fall back to the Status details
    seconds = (status.get("details") or {}).get("retryAfterSeconds")
    return float(seconds) if seconds else None
