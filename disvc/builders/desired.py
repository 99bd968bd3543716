"""The single entry point of the builders: DISVC + live children -> what to do.

Shared by the reconciler and by ``disvc render``. CONTRACT STUB: the builders
work fills in the body; the signature and the returned types are fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from disvc.builders.diff import Plan
from disvc.builders.types import EventSpec, Obj


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """Controller-wide settings that shape children (from command-line flags)."""

    ingress_domain: str = "example.com"
    """Ingress hosts are ``<name>-<namespace>.<ingress_domain>``."""
    ingress_class: str | None = None
    """Ingress class when the DISVC does not name one (None: cluster default)."""
    now: str = "1970-01-01T00:00:00Z"
    """RFC 3339 time stamped on conditions whose status changes (builders read no clock)."""


@dataclass(frozen=True, slots=True)
class Desired:
    """Everything the reconciler needs to converge one DISVC."""

    plan: Plan
    """Writes to make, already diffed against the live children."""
    status: Obj
    """The complete desired ``.status``; patch it only if it differs from live."""
    events: tuple[EventSpec, ...] = field(default=())
    """Events to record, only for changes this plan makes (none when converged)."""
    recheck_after: float | None = None
    """Seconds after which to reconcile again even without a watch event."""


def state(disvc: Obj, live: Sequence[Obj], options: BuildOptions) -> Desired:
    """Compute the plan and the status for ``disvc``.

    ``live`` holds the DISVC's children as read from the API: objects it
    controls, plus any object with a clashing name (foreign) that the reader
    found. Never raises for bad input: an invalid spec yields an empty plan
    that keeps every serving child, a ``Ready=False`` status and a Warning.
    """
    raise NotImplementedError
