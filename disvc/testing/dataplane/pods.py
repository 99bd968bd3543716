"""The data plane's pods: what a kubelet would report, kept in memory.

Neither the loopback API nor envtest runs a kubelet, so model-server
processes stand in for predictor pods and this registry stands in for the
Pod objects and their readiness. The router (kube-proxy's part) selects
endpoints here with a Service's selector, exactly as it would select Ready
pods by label, so a selector that misses the predictor pods finds nothing.

Each pod has a loopback address of its own, as a pod has its own IP: its
containers listen on their declared container ports there, so a Service's
``targetPort`` resolves against real listening ports. Each registry draws
its addresses from a /16 of 127.0.0.0/8 picked at random (never 127.0/16,
where clients live), and skips an address whose model-server ports someone
already listens on: two data planes on one machine (parallel test runs)
never share a pod address, so no request reaches another run's pod.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

PROBED_PORTS: Final = (8080, 8081)
"""Model-server ports an address must have free before a pod gets it."""


def random_pod_network() -> ipaddress.IPv4Network:
    """A /16 of loopback addresses for one registry's pods (not 127.0/16)."""
    return ipaddress.IPv4Network(f"127.{secrets.randbelow(254) + 1}.0.0/16")


def _ports_free(address: str) -> bool:
    """Nobody listens on the model-server ports of ``address``."""
    for port in PROBED_PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


@dataclass(frozen=True, slots=True)
class ContainerPort:
    """One declared container port (``name`` as in ``ports[].name``)."""

    port: int
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Pod:
    """One predictor pod: its identity, labels, address and readiness."""

    namespace: str
    name: str
    isvc: str
    """The InferenceService this pod serves (the header the router adds names it)."""
    labels: Mapping[str, str]
    ip: str
    ports: tuple[ContainerPort, ...]
    ready: bool = False
    revision: str | None = None
    """Knative mode: the revision the pod belongs to (None in Standard mode)."""

    def port(self, target: int | str) -> int | None:
        """The container port a Service ``targetPort`` names (number or name),
        or None when the pod declares no such port. A number resolves even if
        undeclared, as kube-proxy forwards to any numeric target port."""
        if isinstance(target, int):
            return target
        if target.isdigit():
            return int(target)
        return next((p.port for p in self.ports if p.name == target), None)


def matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    """A Service's equality selector over a pod's labels (empty selects none,
    as a Service without a selector gets no endpoints from pods)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@dataclass(slots=True)
class PodRegistry:
    """Every pod of the data plane, thread-safe, with change listeners.

    ``version`` grows on every change, so a waiter can tell whether anything
    moved; listeners are called (outside the lock) after each change.
    """

    _pods: dict[tuple[str, str], Pod] = field(default_factory=dict)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _listeners: list[Callable[[], None]] = field(default_factory=list)
    _free_ips: list[str] = field(default_factory=list)
    _next_ip: int = 1
    network: ipaddress.IPv4Network = field(default_factory=random_pod_network)
    version: int = 0

    def allocate_ip(self) -> str:
        """A pod address nobody holds (released ones are reused last-in first)."""
        with self._lock:
            while self._free_ips:
                address = self._free_ips.pop()
                if _ports_free(address):
                    return address
            while True:
                address = str(self.network[self._next_ip])
                self._next_ip += 1
                if address.split(".")[-1] not in ("0", "255") and _ports_free(address):
                    return address

    def release_ip(self, ip: str) -> None:
        with self._lock:
            self._free_ips.insert(0, ip)

    def add(self, pod: Pod) -> None:
        self._change(lambda: self._pods.__setitem__((pod.namespace, pod.name), pod))

    def remove(self, namespace: str, name: str) -> Pod | None:
        removed: list[Pod | None] = []
        self._change(lambda: removed.append(self._pods.pop((namespace, name), None)))
        return removed[0]

    def set_ready(self, namespace: str, name: str, ready: bool) -> None:
        def update() -> None:
            pod = self._pods.get((namespace, name))
            if pod is not None:
                self._pods[(namespace, name)] = replace(pod, ready=ready)

        self._change(update)

    def get(self, namespace: str, name: str) -> Pod | None:
        with self._lock:
            return self._pods.get((namespace, name))

    def all(self) -> list[Pod]:
        with self._lock:
            return list(self._pods.values())

    def of_isvc(self, namespace: str, isvc: str) -> list[Pod]:
        with self._lock:
            return [p for p in self._pods.values() if p.namespace == namespace and p.isvc == isvc]

    def ready_pods(self, namespace: str, selector: Mapping[str, str]) -> list[Pod]:
        """Ready pods of ``namespace`` that ``selector`` selects, by name."""
        with self._lock:
            found = [
                p
                for p in self._pods.values()
                if p.namespace == namespace and p.ready and matches(p.labels, selector)
            ]
        return sorted(found, key=lambda p: p.name)

    def subscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Block until ``version`` moved on (or ``timeout``); the new version."""
        with self._lock:
            self._lock.wait_for(lambda: self.version != version, timeout)
            return self.version

    def _change(self, mutate: Callable[[], None]) -> None:
        with self._lock:
            mutate()
            self.version += 1
            listeners = list(self._listeners)
            self._lock.notify_all()
        for listener in listeners:
            listener()


def predictor_labels(isvc_name: str, isvc_labels: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The labels KServe puts on a predictor pod: the ISVC's own metadata
    labels, then ``serving.kserve.io/inferenceservice``, ``component`` and
    ``app`` (KServe's raw-deployment reconciler sets these on the pod template)."""
    labels = dict(isvc_labels)
    labels["serving.kserve.io/inferenceservice"] = isvc_name
    labels["component"] = "predictor"
    labels["app"] = f"isvc.{isvc_name}-predictor"
    return labels
