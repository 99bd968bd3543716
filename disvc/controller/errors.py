"""Errors the controller tells apart, by what retrying can do about them.

The client (``kube.responses``) maps HTTP statuses and failed requests onto
these once (chaining with ``raise ... from``); everything above it sees only
these types.
"""

from __future__ import annotations


class ControllerError(Exception):
    """Base of every error the controller raises on purpose."""


class TransientError(ControllerError):
    """Retrying can help: 5xx, 429, connection resets, 409 conflicts.

    ``verb`` and ``kind`` name the request that failed, when the client
    knows it: whoever waits out ``retry_after`` counts the wait under them.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None,
        verb: str | None = None, kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.verb = verb
        self.kind = kind


class ConflictError(TransientError):
    """409: our read was stale or the name is taken; requeue and read again."""


class TooManyRequestsError(TransientError):
    """429: the server asked us to slow down (``retry_after`` seconds)."""


class UnknownOutcomeError(TransientError):
    """A write went out and no answer came back: the server may have applied it.

    Never resent as it is: the next attempt must start from a read (a
    create resent blindly fails with 409 when the first one had landed)."""


class IdleWatchError(TransientError):
    """A watch received nothing, not even a byte, for its idle limit: its
    connection is taken for dead (a peer gone, or a proxy that keeps the
    connection up and forwards nothing); resume it on a new one."""


class NotFoundError(ControllerError):
    """404: the object (or its resource type) does not exist."""


class GoneError(ControllerError):
    """410: a watch resourceVersion is older than the server keeps; relist."""


class PermanentError(ControllerError):
    """Retrying cannot help (invalid request, forbidden); report, don't requeue."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotLeaderError(ControllerError):
    """A write refused before it was sent: this replica may no longer lead
    (its renew deadline passed, or it lost the Lease). Nothing to retry: a
    replica that leads again starts over from its caches."""


class ConfigError(ControllerError):
    """No usable connection settings (kubeconfig or in-cluster service account)."""
