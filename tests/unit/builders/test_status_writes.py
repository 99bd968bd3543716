"""One status write per change: the status planned with a set of writes is
the one the reconcile after those writes (triggered by their own watch
events) computes again, so it writes nothing more."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from disvc_world import OPTIONS, condition, disvc, reconcile, set_ready, settle, with_spec

from disvc.builders import desired
from disvc.builders.types import Obj


@dataclass(frozen=True)
class Change:
    id: str
    start: Callable[[], tuple[Obj, list[Obj]]]
    """The world before the change: a DISVC and its live children."""
    change: Callable[[Obj], Obj]


def _nothing() -> tuple[Obj, list[Obj]]:
    return disvc(replicas=2), []


def _settled(replicas: int = 1) -> Callable[[], tuple[Obj, list[Obj]]]:
    return lambda: settle(disvc(replicas=replicas))


CHANGES = [
    Change("create", _nothing, lambda obj: obj),
    Change("scale-up", _settled(1), lambda obj: with_spec(obj, replicas=3)),
    Change("scale-down", _settled(3), lambda obj: with_spec(obj, replicas=1)),
    Change("rollout-start", _settled(2), lambda obj: with_spec(obj, annotations={"version": "v2"})),
]


@pytest.mark.parametrize("case", CHANGES, ids=lambda c: c.id)
def test_the_status_written_with_a_plan_is_not_written_again(case: Change) -> None:
    obj, live = case.start()
    obj = case.change(obj)

    written, after, first = reconcile(obj, live)
    assert not first.plan.is_empty
    second = desired.state(written, after, OPTIONS)

    assert second.plan.is_empty
    assert second.status == written["status"]


def test_a_new_disvc_reports_its_replicas_as_created_and_progressing_until_ready() -> None:
    written, after, _ = reconcile(disvc(replicas=2), [])

    assert written["status"]["replicas"] == 2
    assert written["status"]["readyReplicas"] == 0
    assert condition(written["status"], "Ready")["reason"] == "ReplicasNotReady"
    progressing = condition(written["status"], "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "Scaling")

    ready = desired.state(written, set_ready(after), OPTIONS)
    assert condition(ready.status, "Ready")["status"] == "True"
    assert condition(ready.status, "Progressing")["reason"] == "Converged"
