"""The data plane's pods: what a kubelet would report, kept in memory.

Neither the loopback API nor envtest runs a kubelet, so model-server
processes stand in for predictor pods and this registry stands in for the
Pod objects and their readiness. The router (kube-proxy's part) selects
endpoints here with a Service's selector, exactly as it would select Ready
pods by label, so a selector that misses the predictor pods finds nothing.

Each pod has a loopback address of its own (``127.1.x.y``), as a pod has its
own IP: its containers listen on their declared container ports there, so a
Service's ``targetPort`` resolves against real listening ports.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

POD_NETWORK: Final = ipaddress.IPv4Network("127.1.0.0/16")
"""Pod addresses: loopback, so traffic never leaves the machine."""


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
    version: int = 0

    def allocate_ip(self) -> str:
        """A pod address nobody holds (released ones are reused last-in first)."""
        with self._lock:
            if self._free_ips:
                return self._free_ips.pop()
            while True:
                address = POD_NETWORK[self._next_ip]
                self._next_ip += 1
                if str(address).split(".")[-1] not in ("0", "255"):
                    return str(address)

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
