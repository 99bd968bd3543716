"""Exponential backoff: how long to wait after the n-th failure in a row.

Three parts of the controller back off, each on its own failures: the
workqueue per key (``workqueue.limiters``, exact delays so a key's retries
are predictable), the reflector between failed lists and watches, and the
in-call retry of one API request (``kube.retry``). The last two draw their
delay at random from the upper half of the nominal one, so many informers
or requests failing together do not retry in lockstep. The nominal delay is
``initial * factor**failures``, capped, in one place here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def exponential(failures: int, initial: float, cap: float, factor: float = 2.0) -> float:
    """``initial * factor**failures``, at most ``cap`` (even when the power overflows)."""
    try:
        return min(cap, initial * factor**failures)
    except OverflowError:  # failing for years; the cap applies
        return cap


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with jitter: each delay is drawn from [d/2, d]."""

    initial: float = 0.2
    cap: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    _failures: int = 0

    def delay(self, failures: int) -> float:
        """A jittered delay after ``failures`` failures in a row (no state kept)."""
        return exponential(failures, self.initial, self.cap, self.factor) * (0.5 + 0.5 * self.rng.random())

    def next(self) -> float:
        """The delay after one more failure."""
        delay = self.delay(self._failures)
        self._failures += 1
        return delay

    def reset(self) -> None:
        self._failures = 0
