"""A Service's endpoints and kube-proxy's choice among them.

Follows the Kubernetes documentation "Virtual IPs and Service Proxies"
(https://kubernetes.io/docs/reference/networking/virtual-ips/) and
"Service" (https://kubernetes.io/docs/concepts/services-networking/service/):

- endpoints are the Ready pods the Service's selector selects, each at the
  container port the Service port's ``targetPort`` names (a number, or a
  port name resolved per pod; a pod without that named port is no endpoint);
  ``targetPort`` defaults to ``port``;
- without session affinity each new client connection goes to a random
  endpoint (kube-proxy balances connections, not requests);
- ``sessionAffinity: ClientIP`` sends a client address to the endpoint it
  used before, until ``sessionAffinityConfig.clientIP.timeoutSeconds``
  (default 10800) pass without a connection: each use restarts the timer.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from disvc.testing.dataplane.pods import Pod, PodRegistry

DEFAULT_AFFINITY_TIMEOUT: Final = 10800
"""Seconds: the API server's default for ``sessionAffinityConfig.clientIP.timeoutSeconds``."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    pod: Pod
    ip: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


def service_port(service: Mapping[str, Any], *, number: int | None = None, name: str | None = None) -> Any:
    """The Service's port entry with that ``port`` number or that ``name``, or None."""
    for entry in service.get("spec", {}).get("ports") or []:
        if (number is not None and entry.get("port") == number) or (name is not None and entry.get("name") == name):
            return entry
    return None


def endpoints(registry: PodRegistry, service: Mapping[str, Any], port_entry: Mapping[str, Any]) -> list[Endpoint]:
    """The endpoints of one Service port: Ready selected pods with the target port."""
    target: int | str = port_entry.get("targetPort", port_entry.get("port"))
    namespace = service.get("metadata", {}).get("namespace", "default")
    selector = service.get("spec", {}).get("selector") or {}
    found = []
    for pod in registry.ready_pods(namespace, selector):
        resolved = pod.port(target)
        if resolved is not None:
            found.append(Endpoint(pod, pod.ip, resolved))
    return found


def affinity_timeout(service: Mapping[str, Any]) -> float | None:
    """Seconds of ClientIP affinity, or None when the Service asks for none."""
    spec = service.get("spec", {})
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    return float(config.get("timeoutSeconds", DEFAULT_AFFINITY_TIMEOUT))


class KubeProxy:
    """Picks an endpoint for each new client connection to a Service port."""

    def __init__(self, registry: PodRegistry, *, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._rng = rng or random.Random()
        self._clock = clock
        self._lock = threading.Lock()
        # (namespace, service, port, client) -> (endpoint address, last use)
        self._affinity: dict[tuple[str, str, int, str], tuple[str, float]] = {}

    def endpoints(self, service: Mapping[str, Any], port: int) -> list[Endpoint] | None:
        """The endpoints behind ``port`` of ``service``; None when the Service has no such port."""
        entry = service_port(service, number=port)
        return None if entry is None else endpoints(self._registry, service, entry)

    def pick(self, service: Mapping[str, Any], port: int, client_ip: str) -> list[Endpoint] | None:
        """Endpoints for one connection, the choice first, then the rest shuffled
        (a connect failure falls back along them); None without such a port."""
        found = self.endpoints(service, port)
        if not found:
            return found
        others = list(found)
        self._rng.shuffle(others)
        timeout = affinity_timeout(service)
        if timeout is None:
            return others
        meta = service.get("metadata", {})
        key = (meta.get("namespace", "default"), meta.get("name", ""), port, client_ip)
        now = self._clock()
        with self._lock:
            remembered = self._affinity.get(key)
            chosen = others[0]
            if remembered is not None and now - remembered[1] <= timeout:
                chosen = next((e for e in found if e.address == remembered[0]), chosen)
            self._affinity[key] = (chosen.address, now)
        return [chosen] + [e for e in others if e is not chosen]
