"""From an HTTP response to a controller error, in one place.

An API response that is not 2xx carries a ``Status`` body; its code says
what retrying can do (``disvc.controller.errors``): 404 ``NotFoundError``,
409 ``ConflictError``, 410 ``GoneError`` (the reflector relists), 429 and
5xx ``TransientError`` with the server's ``Retry-After`` when it gave one,
anything else ``PermanentError``. A request that got no response at all (a
reset, a timeout) is transient too. Watches report the same statuses as
``ERROR`` events, mapped here by the same function. A write that went out
and got no answer is ``UnknownOutcomeError``: its fate is unknown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from disvc.builders.types import Obj
from disvc.controller import errors
from disvc.controller.kube import transport

TRANSPORT_ERRORS = (OSError,)
"""What a request that got no (complete) response raises."""


def check(stream: transport.Stream, what: str) -> transport.Stream:
    """The stream, unread, when it is 2xx; otherwise read it, close it and raise."""
    if 200 <= stream.status < 300:
        return stream
    try:
        data = stream.read()
    except TRANSPORT_ERRORS:
        data = b""
    finally:
        stream.close()
    raise status_error(stream.status, decode_status(data), stream.headers, what)


def status_error(
    code: int, status: Obj, headers: Mapping[str, str] | None, what: str,
    verb: str | None = None, kind: str | None = None,
) -> errors.ControllerError:
    """The controller error for an HTTP status and its ``Status`` body
    (a transient one names the request by ``verb`` and ``kind``)."""
    reason = status.get("reason") or ""
    message = f"{what}: {code} {reason}: {status.get('message', '')}".rstrip(": ")
    if code == 404:
        return errors.NotFoundError(message)
    if code == 409:
        return errors.ConflictError(message, status=code)
    if code == 410:
        return errors.GoneError(message)
    if code == 429:
        return errors.TooManyRequestsError(
            message, status=code, retry_after=_retry_after_seconds(status, headers), verb=verb, kind=kind
        )
    if code >= 500 or code == 0:
        return errors.TransientError(
            message, status=code, retry_after=_retry_after_seconds(status, headers), verb=verb, kind=kind
        )
    return errors.PermanentError(message, status=code, reason=reason or None)


def transport_error(what: str, exc: BaseException, method: str) -> errors.TransientError:
    """The error for a request that got no (complete) response: unknown
    outcome for a write that may have reached the server."""
    message = f"{what}: {type(exc).__name__}: {exc}"
    if method != "GET" and not isinstance(exc, transport.NotSentError):
        return errors.UnknownOutcomeError(message)
    return errors.TransientError(message)


def decode_status(body: bytes) -> Obj:
    """The ``Status`` object of an error body (a bare message when it is not JSON)."""
    try:
        decoded = json.loads(body) if body else {}
    except ValueError:
        return {"message": body[:200].decode("utf-8", "replace")}
    return decoded if isinstance(decoded, dict) else {}


def _retry_after_seconds(status: Obj, headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait: its ``Retry-After`` header
    (``headers`` has lower-case names), else the Status body's details."""
    header = headers.get("retry-after") if headers else None
    if header:
        seconds = retry_after_header(header)
        if seconds is not None:
            return seconds
    details = status.get("details")
    value = details.get("retryAfterSeconds") if isinstance(details, dict) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def retry_after_header(value: str, now: float | None = None) -> float | None:
    """A ``Retry-After`` value (delay-seconds or an HTTP-date) in seconds from now."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
