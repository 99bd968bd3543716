"""The brief in-call retry of one API request.

Transient failures (5xx, 429, resets) are tried again a few times, with a
short jittered backoff or the server's ``Retry-After`` when it is short.
A longer ``Retry-After`` ends the call at once: the error carries it and the
workqueue waits instead, without holding a worker. Conflicts are never
retried here: the workqueue requeues the key and the reconcile reads again,
which is what resolves a conflict. Watches are not retried either: the
reflector owns their backoff.
"""

from __future__ import annotations

from typing import Final

import tenacity

from disvc.controller import errors
from disvc.controller.backoff import Backoff

ATTEMPTS: Final = 4
MAX_WAIT: Final = 1.0
"""Cap on our own backoff between attempts inside one call."""
RETRY_AFTER_CAP: Final = 2.0
"""Longest Retry-After we wait out inside one call."""


def _is_retryable(exc: BaseException) -> bool:
    if not isinstance(exc, errors.TransientError) or isinstance(exc, errors.ConflictError):
        return False
    return exc.retry_after is None or exc.retry_after <= RETRY_AFTER_CAP


def policy(attempts: int = ATTEMPTS) -> tenacity.Retrying:
    """Runs a call, retrying as the module docstring says; re-raises the last error."""
    backoff = Backoff(initial=0.05, cap=MAX_WAIT)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            return float(retry_after)
        return backoff.delay(state.attempt_number - 1)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_retryable),
        wait=wait,
        stop=tenacity.stop_after_attempt(attempts),
        reraise=True,
    )
