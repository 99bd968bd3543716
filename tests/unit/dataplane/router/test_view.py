from __future__ import annotations

from router_world import FakeView, service

from disvc.testing.dataplane.router.view import LaggingView


def test_a_lagging_view_shows_changes_only_after_the_delay() -> None:
    now = [0.0]
    view = FakeView([service("a", {"app": "a"})])
    lagging = LaggingView(view, 5.0, clock=lambda: now[0])
    view.service_list.append(service("b", {"app": "b"}))
    now[0] = 1.0
    lagging.sample()
    assert lagging.service("default", "b") is None
    now[0] = 5.5
    assert lagging.service("default", "b") is None
    now[0] = 6.0
    assert lagging.service("default", "b") is not None
