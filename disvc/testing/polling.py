"""``eventually``: how tests, the demo and benchmarks wait for a state.

Polling with a deadline instead of sleeping a guessed time: fast when the
state arrives early, and a clear failure (the last assertion) when it never
does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(fn: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Call ``fn`` until it returns without AssertionError; return its value.

    At the deadline the last AssertionError propagates, so the test reports
    what was still wrong rather than "timed out". Any other exception
    propagates at once: it is a bug, not a state still converging.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)
