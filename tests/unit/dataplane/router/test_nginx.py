from __future__ import annotations

import random

from router_world import FakeView, add_pods, ingress, request, service, set_cookie_value

from disvc.testing.dataplane.pods import PodRegistry
from disvc.testing.dataplane.router.nginx import Nginx

HOST = "demo-ns.example.com"


def world(main: dict[str, str] | None = None, canary: dict[str, str] | None = None,
          ) -> tuple[Nginx, FakeView, PodRegistry]:
    registry = PodRegistry()
    add_pods(registry, "main", 3)
    add_pods(registry, "canary", 2)
    view = FakeView([service("main", {"app": "main"}, affinity=True), service("canary", {"app": "canary"})])
    view.ingress_list.append(ingress("demo", HOST, "main", annotations=main))
    if canary is not None:
        view.ingress_list.append(ingress("demo-canary", HOST, "canary", annotations={"canary": "true", **canary}))
    return Nginx(registry, view.service, rng=random.Random(7)), view, registry


def pod_of(nginx: Nginx, view: FakeView, **kwargs: str) -> str:
    decision = nginx.route(view.ingresses(), request(HOST, **kwargs))
    assert decision is not None and decision.endpoints
    return decision.endpoints[0].pod.isvc


def test_round_robin_per_request_ignores_the_service_affinity() -> None:
    nginx, view, _ = world()
    names = []
    for _ in range(6):
        decision = nginx.route(view.ingresses(), request(HOST))
        assert decision is not None
        names.append(decision.endpoints[0].pod.name)
    assert len(set(names[:3])) == 3 and names[:3] == names[3:]


def test_hosts_and_paths() -> None:
    nginx, view, _ = world()
    view.ingress_list.append(ingress("api", HOST, "canary", path="/v2/models", path_type="Prefix"))
    view.ingress_list.append(ingress("wild", "*.example.org", "canary"))
    assert pod_of(nginx, view, path="/v2/models/iris/infer") == "canary"
    assert pod_of(nginx, view, path="/v2/modelsX") == "main"
    decision = nginx.route(view.ingresses(), request("a.example.org"))
    assert decision is not None and decision.endpoints[0].pod.isvc == "canary"
    assert nginx.route(view.ingresses(), request("a.b.example.org")) is None
    assert nginx.route(view.ingresses(), request("other.example.com")) is None


def test_no_ready_endpoints_answers_503() -> None:
    nginx, view, registry = world()
    for pod in registry.of_isvc("default", "main"):
        registry.set_ready("default", pod.name, False)
    decision = nginx.route(view.ingresses(), request(HOST))
    assert decision is not None and decision.status == 503


def test_canary_precedence_header_then_cookie_then_weight() -> None:
    nginx, view, _ = world(canary={"canary-by-header": "X-Canary", "canary-by-cookie": "canary",
                                   "canary-weight": "100"})
    assert pod_of(nginx, view) == "canary"
    assert pod_of(nginx, view, cookie="canary=never") == "main"
    assert pod_of(nginx, view, x_canary="always", cookie="canary=never") == "canary"
    assert pod_of(nginx, view, x_canary="never", cookie="canary=always") == "main"
    assert pod_of(nginx, view, x_canary="other", cookie="canary=never") == "main"


def test_canary_header_value_and_pattern() -> None:
    nginx, view, _ = world(canary={"canary-by-header": "X-Canary", "canary-by-header-value": "yes"})
    assert pod_of(nginx, view, x_canary="yes") == "canary"
    assert pod_of(nginx, view, x_canary="always") == "main"
    nginx, view, _ = world(canary={"canary-by-header": "X-Canary", "canary-by-header-pattern": "^b.t"})
    assert pod_of(nginx, view, x_canary="beta") == "canary"
    assert pod_of(nginx, view, x_canary="alpha") == "main"


def test_canary_weight_share_within_three_points() -> None:
    for weight, total in (("10", None), ("30", "200")):
        annotations = {"canary-weight": weight} | ({"canary-weight-total": total} if total else {})
        nginx, view, _ = world(canary=annotations)
        share = sum(pod_of(nginx, view) == "canary" for _ in range(2000)) / 2000
        expected = int(weight) / int(total or 100)
        assert abs(share - expected) <= 0.03, (share, expected)


def test_cookie_affinity_keeps_a_client_and_sets_the_documented_cookie() -> None:
    nginx, view, _ = world(main={"affinity": "cookie", "session-cookie-name": "route",
                                 "session-cookie-max-age": "600", "session-cookie-path": "/"})
    decision = nginx.route(view.ingresses(), request(HOST))
    assert decision is not None
    header = dict(decision.response_headers)["Set-Cookie"]
    assert "Max-Age=600" in header and "Path=/" in header
    name, value = set_cookie_value(header)
    assert name == "route"
    first = decision.endpoints[0].pod.name
    for _ in range(20):
        again = nginx.route(view.ingresses(), request(HOST, cookie=f"route={value}"))
        assert again is not None and again.endpoints[0].pod.name == first and not again.response_headers


def test_persistent_cookie_moves_only_when_its_pod_goes() -> None:
    nginx, view, registry = world(main={"affinity": "cookie", "affinity-mode": "persistent"})
    decision = nginx.route(view.ingresses(), request(HOST))
    assert decision is not None
    _, value = set_cookie_value(dict(decision.response_headers)["Set-Cookie"])
    first = decision.endpoints[0].pod.name
    add_pods(registry, "main", 5, first=3)  # scaling up does not rebalance a persistent session
    for _ in range(10):
        kept = nginx.route(view.ingresses(), request(HOST, cookie=f"INGRESSCOOKIE={value}"))
        assert kept is not None and kept.endpoints[0].pod.name == first
    registry.set_ready("default", first, False)
    moved = nginx.route(view.ingresses(), request(HOST, cookie=f"INGRESSCOOKIE={value}"))
    assert moved is not None and moved.endpoints[0].pod.name != first and moved.response_headers


def test_hash_by_remote_addr_keeps_each_client_on_one_pod() -> None:
    nginx, view, _ = world(main={"upstream-hash-by": "$remote_addr"})
    by_client: dict[str, set[str]] = {}
    for i in range(2, 40):
        for _ in range(5):
            decision = nginx.route(view.ingresses(), request(HOST, client=f"127.0.0.{i}"))
            assert decision is not None
            by_client.setdefault(f"127.0.0.{i}", set()).add(decision.endpoints[0].pod.name)
    assert all(len(pods) == 1 for pods in by_client.values())
    assert len(set.union(*by_client.values())) == 3


def test_hash_by_header_and_cookie() -> None:
    nginx, view, _ = world(main={"upstream-hash-by": "$http_x_user$cookie_id"})
    picks = {nginx.route(view.ingresses(), request(HOST, client=f"127.0.0.{i}", x_user="u1",
                                                   cookie="id=7")).endpoints[0].pod.name  # type: ignore[union-attr]
             for i in range(2, 30)}
    assert len(picks) == 1


def test_sticky_canary_keeps_each_side_its_clients() -> None:
    nginx, view, _ = world(main={"affinity": "cookie"}, canary={"canary-weight": "50"})
    for _ in range(40):
        decision = nginx.route(view.ingresses(), request(HOST))
        assert decision is not None
        _, value = set_cookie_value(dict(decision.response_headers)["Set-Cookie"])
        side = decision.endpoints[0].pod.name
        for _ in range(10):
            again = nginx.route(view.ingresses(), request(HOST, cookie=f"INGRESSCOOKIE={value}"))
            assert again is not None and again.endpoints[0].pod.name == side


def test_legacy_canary_gives_the_canary_no_affinity() -> None:
    nginx, view, _ = world(main={"affinity": "cookie"},
                           canary={"canary-weight": "100", "affinity-canary-behavior": "legacy"})
    decision = nginx.route(view.ingresses(), request(HOST))
    assert decision is not None and decision.endpoints[0].pod.isvc == "canary"
    assert decision.response_headers == []


def test_backend_protocol_grpc_marks_the_route() -> None:
    nginx, view, _ = world(main={"backend-protocol": "GRPC"})
    decision = nginx.route(view.ingresses(), request(HOST))
    assert decision is not None and decision.grpc
