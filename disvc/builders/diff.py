"""Desired vs live children -> a ``Plan`` of creates, updates, deletes, conflicts.

CONTRACT STUB: the builders work fills in ``plan``; ``Plan`` is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from disvc.builders.types import ChildRef, Obj


@dataclass(frozen=True, slots=True)
class Plan:
    """What to write, in order: creates and updates first, then deletes."""

    create: tuple[Obj, ...] = ()
    """Desired objects with no live counterpart (server-side apply creates them)."""
    update: tuple[Obj, ...] = ()
    """Desired objects whose live counterpart we control and that drifted."""
    delete: tuple[ChildRef, ...] = ()
    """Live children we control that nothing desired or kept names any more."""
    conflicts: tuple[Obj, ...] = ()
    """Live objects that hold a desired name but that this DISVC does not control."""

    @property
    def is_empty(self) -> bool:
        return not (self.create or self.update or self.delete)
