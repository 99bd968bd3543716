"""Runnable groups: started in order, stopped in reverse, all up or all down."""

from __future__ import annotations

import pytest

from disvc.controller.runnables import Group, Member


class Part:
    def __init__(self, name: str, journal: list[str], fail_start: bool = False, ends_in_time: bool = True) -> None:
        self.name, self.journal, self.fail_start, self.ends_in_time = name, journal, fail_start, ends_in_time

    def start(self) -> None:
        if self.fail_start:
            raise OSError(f"{self.name} cannot start")
        self.journal.append(f"start {self.name}")

    def stop(self, timeout: float) -> bool:
        self.journal.append(f"stop {self.name}")
        return self.ends_in_time


def group(journal: list[str], *parts: Part) -> Group:
    return Group("test", [Member(part.name, part, 1.0) for part in parts])


def test_members_start_in_order_and_stop_in_reverse() -> None:
    journal: list[str] = []
    parts = group(journal, Part("a", journal), Part("b", journal), Part("c", journal))
    assert parts.start() and parts.started
    assert parts.stop()
    assert journal == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


def test_a_member_that_fails_to_start_takes_down_those_started_before_it() -> None:
    journal: list[str] = []
    parts = group(journal, Part("a", journal), Part("b", journal), Part("c", journal, fail_start=True))
    with pytest.raises(OSError, match="c cannot start"):
        parts.start()
    assert journal == ["start a", "start b", "stop b", "stop a"]
    assert not parts.started
    parts.stop()
    assert journal[-1] == "stop a", "nothing is stopped twice"


def test_a_stopped_group_never_starts() -> None:
    journal: list[str] = []
    parts = group(journal, Part("a", journal))
    parts.stop()
    assert parts.start() is False
    assert journal == []


def test_stop_reports_a_member_that_did_not_end_in_time_and_still_stops_the_rest() -> None:
    journal: list[str] = []
    parts = group(journal, Part("a", journal), Part("b", journal, ends_in_time=False))
    parts.start()
    assert parts.stop() is False
    assert journal[-2:] == ["stop b", "stop a"]
