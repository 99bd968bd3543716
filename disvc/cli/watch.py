"""``kubectl disvc status N -w``: redraw the status until the rollout ends.

Like ``kubectl rollout status``, the exit code says how it ended:

- 0: the rollout is complete (``Progressing`` reason ``Converged``, or
  ``ScaleDownDelay`` while the generation it left waits to be deleted, for the
  latest spec);
- 1: it stopped and needs a person (``ProgressDeadlineExceeded``,
  ``InvalidSpec``, ``ChildRejected``), or the DISVC was deleted;
- 3: ``--timeout`` passed first.

A canary waiting to be promoted (``CanaryRunning``) has not ended: the watch
goes on through ``promote`` or ``abort`` to the outcome. Each pass reads the
DISVC and its ISVCs, then waits on a watch of the DISVC (its status changes
whenever an ISVC's readiness does) for at most ``TICK`` seconds, so the
deadline countdown stays current. On a terminal the screen is redrawn in
place; into a pipe or file a new screen is written only when an object
changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TextIO

from disvc.builders.types import Obj
from disvc.cli import status
from disvc.cli.errors import CliError
from disvc.cli.kube import RESOURCE, Api

COMPLETE: Final = 0
STOPPED: Final = 1
TIMED_OUT: Final = 3
TICK: Final = 2.0
CLEAR_SCREEN: Final = "\x1b[H\x1b[2J"
STOPPING_REASONS: Final = frozenset({"ProgressDeadlineExceeded", "InvalidSpec", "ChildRejected", "AnalysisFailed"})


@dataclass(frozen=True, slots=True)
class Outcome:
    code: int
    line: str


def now() -> datetime:
    return datetime.now(UTC)


def outcome(disvc: Obj) -> Outcome | None:
    """How the rollout ended, or None while it goes on."""
    meta = disvc.get("metadata") or {}
    name = f"{RESOURCE}/{meta.get('name')}"
    progressing = status.progressing(disvc)
    if progressing.get("observedGeneration") != meta.get("generation"):
        return None  # the controller has not judged the latest spec yet
    reason = progressing.get("reason")
    if reason in ("Converged", "ScaleDownDelay"):  # the old generation only waits to be deleted
        active = (disvc.get("status") or {}).get("activeGeneration")
        return Outcome(COMPLETE, f"{name}: rollout complete, {active} serves all traffic")
    if reason in STOPPING_REASONS:
        return Outcome(STOPPED, f"{name}: rollout stopped: {reason}: {progressing.get('message', '')}")
    return None


def follow(
    api: Api,
    name: str,
    out: TextIO,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Redraw until the rollout ends; returns the exit code."""
    redraw = out.isatty()
    ends = clock() + timeout if timeout else None
    shown: tuple[str, ...] | None = None
    while True:
        try:
            disvc = api.get_with_history(name)
        except CliError as problem:
            if shown is not None and "not found" in str(problem):
                out.write(f"{RESOURCE}/{name} was deleted\n")
                return STOPPED
            raise
        isvcs = api.isvcs(name)
        seen = (str(disvc["metadata"].get("resourceVersion")), *sorted(_version(i) for i in isvcs))
        if redraw or seen != shown:
            screen = status.view(disvc, isvcs, now())
            out.write(CLEAR_SCREEN + screen if redraw else ("\n" if shown else "") + screen)
            out.flush()
            shown = seen
        ended = outcome(disvc)
        if ended is not None:
            out.write(ended.line + "\n")
            return ended.code
        left = None if ends is None else ends - clock()
        if left is not None and left <= 0:
            out.write(f"{RESOURCE}/{name}: timed out after {timeout:g}s; the rollout goes on\n")
            return TIMED_OUT
        api.wait_for_change(name, seen[0], min(TICK, left) if left is not None else TICK)


def _version(isvc: Obj) -> str:
    meta = isvc.get("metadata") or {}
    return f"{meta.get('name')}@{meta.get('resourceVersion')}"
