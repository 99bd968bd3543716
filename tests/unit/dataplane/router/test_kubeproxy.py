from __future__ import annotations

import random

from router_world import add_pods, service

from disvc.testing.dataplane.pods import ContainerPort, Pod, PodRegistry
from disvc.testing.dataplane.router.kubeproxy import KubeProxy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_endpoints_are_ready_selected_pods_at_the_target_port() -> None:
    registry = PodRegistry()
    ready = add_pods(registry, "a", 2)
    add_pods(registry, "a-late", 1, ready=False)
    registry.add(Pod("default", "other", "b", {"app": "b"}, registry.allocate_ip(), (), ready=True))
    found = KubeProxy(registry).endpoints(service("a", {"app": "a"}), 80) or []
    assert sorted((e.pod.name, e.port) for e in found) == [(p.name, 8080) for p in ready]
    assert KubeProxy(registry).endpoints(service("a", {"app": "a"}), 81) is None


def test_a_named_target_port_resolves_per_pod_and_skips_pods_without_it() -> None:
    registry = PodRegistry()
    registry.add(Pod("default", "h2", "a", {"app": "a"}, registry.allocate_ip(), (ContainerPort(9000, "grpc"),), True))
    registry.add(Pod("default", "rest", "a", {"app": "a"}, registry.allocate_ip(), (ContainerPort(8080, "http"),), True))
    found = KubeProxy(registry).endpoints(service("a", {"app": "a"}, target="grpc"), 80) or []
    assert [(e.pod.name, e.port) for e in found] == [("h2", 9000)]


def test_client_ip_affinity_holds_until_the_timeout_passes_without_use() -> None:
    registry = PodRegistry()
    add_pods(registry, "a", 5)
    clock = Clock()
    proxy = KubeProxy(registry, rng=random.Random(1), clock=clock)
    svc = service("a", {"app": "a"}, affinity=True, timeout=60)
    first = (proxy.pick(svc, 80, "127.0.0.9") or [])[0].pod.name
    for _ in range(30):
        clock.now += 50  # each use restarts the timer
        assert (proxy.pick(svc, 80, "127.0.0.9") or [])[0].pod.name == first
    seen = set()
    for _ in range(30):
        clock.now += 61
        seen.add((proxy.pick(svc, 80, "127.0.0.9") or [])[0].pod.name)
    assert len(seen) > 1


def test_without_affinity_connections_spread_over_endpoints() -> None:
    registry = PodRegistry()
    add_pods(registry, "a", 3)
    proxy = KubeProxy(registry, rng=random.Random(2))
    picks = {(proxy.pick(service("a", {"app": "a"}), 80, "127.0.0.9") or [])[0].pod.name for _ in range(60)}
    assert picks == {"a-0", "a-1", "a-2"}


def test_affinity_moves_when_the_remembered_pod_is_gone() -> None:
    registry = PodRegistry()
    add_pods(registry, "a", 2)
    proxy = KubeProxy(registry)
    svc = service("a", {"app": "a"}, affinity=True)
    first = (proxy.pick(svc, 80, "127.0.0.9") or [])[0].pod.name
    registry.set_ready("default", first, False)
    assert (proxy.pick(svc, 80, "127.0.0.9") or [])[0].pod.name != first
