from __future__ import annotations

import random
from datetime import UTC, datetime

from router_world import FakeView, add_pods, http_route, request, service, set_cookie_value

from disvc.testing.dataplane.pods import PodRegistry
from disvc.testing.dataplane.router.gateway import Gateway, route_status

HOST = "demo.example.com"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def world(route: dict[str, object], clock: Clock | None = None) -> tuple[Gateway, FakeView, PodRegistry]:
    registry = PodRegistry()
    add_pods(registry, "blue", 2)
    add_pods(registry, "green", 2)
    view = FakeView([service("blue", {"app": "blue"}, affinity=True), service("green", {"app": "green"})])
    view.http_route_list.append(route)  # type: ignore[arg-type]
    return Gateway(registry, view.service, rng=random.Random(3), clock=clock or Clock()), view, registry


def test_weights_share_requests_and_zero_gets_none() -> None:
    gateway, view, _ = world(http_route("r", [HOST], [("blue", 80), ("green", 20)]))
    picks = [gateway.route(view.http_routes(), request(HOST)) for _ in range(2000)]
    share = sum(d is not None and d.endpoints[0].pod.isvc == "green" for d in picks) / 2000
    assert abs(share - 0.2) <= 0.03
    gateway, view, _ = world(http_route("r", [HOST], [("blue", 1), ("green", 0)]))
    assert all(gateway.route(view.http_routes(), request(HOST)).endpoints[0].pod.isvc == "blue"  # type: ignore[union-attr]
               for _ in range(200))


def test_hostnames_and_paths() -> None:
    gateway, view, _ = world(http_route("r", ["*.example.com"], [("blue", 1)], path="/v2"))
    assert gateway.route(view.http_routes(), request("a.b.example.com", path="/v2/models")) is not None
    assert gateway.route(view.http_routes(), request("example.com")) is None
    missed = gateway.route(view.http_routes(), request(HOST, path="/v2x"))
    assert missed is not None and missed.status == 404


def test_missing_backend_answers_500_and_no_endpoints_503() -> None:
    gateway, view, registry = world(http_route("r", [HOST], [("gone", 1)]))
    assert gateway.route(view.http_routes(), request(HOST)).status == 500  # type: ignore[union-attr]
    gateway, view, registry = world(http_route("r", [HOST], [("blue", 1)]))
    for pod in registry.of_isvc("default", "blue"):
        registry.set_ready("default", pod.name, False)
    assert gateway.route(view.http_routes(), request(HOST)).status == 503  # type: ignore[union-attr]


def test_cookie_session_persistence_keeps_a_client_until_idle_timeout() -> None:
    clock = Clock()
    persistence = {"sessionName": "sess", "idleTimeout": "30s", "absoluteTimeout": "1h",
                   "cookieConfig": {"lifetimeType": "Permanent"}}
    gateway, view, _ = world(http_route("r", [HOST], [("blue", 1), ("green", 1)], persistence=persistence), clock)
    first = gateway.route(view.http_routes(), request(HOST))
    assert first is not None
    header = dict(first.response_headers)["Set-Cookie"]
    assert "Max-Age=3600" in header
    _, token = set_cookie_value(header)
    for _ in range(30):
        clock.now += 20
        kept = gateway.route(view.http_routes(), request(HOST, cookie=f"sess={token}"))
        assert kept is not None and kept.endpoints[0] == first.endpoints[0] and not kept.response_headers
    clock.now += 31
    expired = gateway.route(view.http_routes(), request(HOST, cookie=f"sess={token}"))
    assert expired is not None and "Set-Cookie" in dict(expired.response_headers)


def test_header_session_persistence() -> None:
    gateway, view, _ = world(http_route("r", [HOST], [("blue", 1), ("green", 1)],
                                        persistence={"sessionName": "x-session", "type": "Header"}))
    first = gateway.route(view.http_routes(), request(HOST))
    assert first is not None
    token = dict(first.response_headers)["x-session"]
    for _ in range(20):
        kept = gateway.route(view.http_routes(), request(HOST, x_session=token))
        assert kept is not None and kept.endpoints[0] == first.endpoints[0]


def test_route_status_reports_a_missing_backend() -> None:
    route = http_route("r", [HOST], [("blue", 1), ("gone", 1)])
    view = FakeView([service("blue", {"app": "blue"})])
    status = route_status(route, view.service, controller_name="example.com/gw", now=datetime(2025, 1, 1, tzinfo=UTC))
    (parent,) = status["parents"]
    assert parent["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}
    assert parent["controllerName"] == "example.com/gw"
    conditions = {c["type"]: c for c in parent["conditions"]}
    assert conditions["Accepted"]["status"] == "True"
    assert (conditions["ResolvedRefs"]["status"], conditions["ResolvedRefs"]["reason"]) == ("False", "BackendNotFound")
    assert conditions["ResolvedRefs"]["observedGeneration"] == 3
    view.service_list.append(service("gone", {"app": "gone"}))
    resolved = route_status(route, view.service, controller_name="example.com/gw",
                            gateway_exists=lambda ns, name: False)
    conditions = {c["type"]: c for c in resolved["parents"][0]["conditions"]}
    assert conditions["ResolvedRefs"]["status"] == "True"
    assert (conditions["Accepted"]["status"], conditions["Accepted"]["reason"]) == ("False", "NoMatchingParent")
