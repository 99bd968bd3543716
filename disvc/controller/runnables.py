"""Starting and stopping the controller's parts in order, as controller-runtime's runnable groups.

A ``Runnable`` starts without blocking and stops within a timeout, saying
whether it ended in time. A ``Group`` starts its members in order and stops
the ones it started in reverse, each with its own timeout; a group stopped
before (or while) it starts never starts anything after that, so a late
start (leadership won during shutdown) cannot resurrect a part. The manager
runs four groups: the HTTP servers (so the kubelet sees a live pod), the
caches, leader election, and the parts that write (Event recorder and
workers), which start only once this replica leads. Shutdown runs the same
list backwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class Runnable(Protocol):
    def start(self) -> object:
        """Begin running in the background; return promptly."""

    def stop(self, timeout: float) -> bool:
        """End within ``timeout`` seconds; False if it could not (it is left to die with the process)."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    runnable: Runnable
    stop_timeout: float
    """How long its ``stop`` may take."""


class Group:
    """Members started in order, stopped in reverse; see the module docstring."""

    def __init__(self, name: str, members: Sequence[Member]) -> None:
        self.name = name
        self._members = tuple(members)
        self._lock = threading.Lock()
        self._started: list[Member] = []
        self._stopped = False

    @property
    def started(self) -> bool:
        with self._lock:
            return bool(self._started)

    def start(self) -> bool:
        """Start every member; False (starting nothing) once the group was stopped.

        A member that fails to start stops the ones started before it, in
        reverse, and the failure propagates: a group is all up or all down."""
        with self._lock:
            if self._stopped or self._started:
                return False
            try:
                for member in self._members:
                    member.runnable.start()
                    self._started.append(member)
            except BaseException:
                started, self._started = self._started, []
                for member in reversed(started):
                    member.runnable.stop(member.stop_timeout)
                raise
            return True

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the started members in reverse order; True if all ended in time.

        ``timeout`` replaces each member's own (0: tell them, wait for none)."""
        with self._lock:
            self._stopped = True
            started, self._started = self._started, []
        ended = True
        for member in reversed(started):
            wait = member.stop_timeout if timeout is None else timeout
            if not member.runnable.stop(wait):
                log.warning("Did not stop in time", group=self.name, runnable=member.name, timeout=wait)
                ended = False
        return ended


class Stoppable(Protocol):
    def stop(self, timeout: float) -> bool: ...


class Started:
    """A ``Runnable`` for something that runs as soon as it exists (a server
    bound and serving when made): ``start`` calls ``make``."""

    def __init__(self, make: Callable[[], Stoppable]) -> None:
        self._make = make
        self._running: Stoppable | None = None

    def start(self) -> None:
        self._running = self._make()

    def stop(self, timeout: float) -> bool:
        return self._running is None or self._running.stop(timeout)


class Loop:
    """A blocking ``target(stop)`` run on a daemon thread as a ``Runnable``."""

    def __init__(self, name: str, target: Callable[[threading.Event], None]) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()
