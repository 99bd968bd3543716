"""The objects a router reads, and the lag with which a real one applies them.

:class:`ClusterView` is what the router needs from the API: Services,
Ingresses, HTTPRoutes and GRPCRoutes as plain dicts (informers feed it in
the data plane, a fake in unit tests). :class:`LaggingView` applies object
changes ``delay`` seconds late, as a router that reloads its configuration
does; pods (endpoints) are not delayed, as ingress-nginx and kube-proxy
update endpoints without a reload.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class ClusterView(Protocol):
    def services(self) -> list[dict[str, Any]]: ...

    def service(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def ingresses(self) -> list[dict[str, Any]]: ...

    def http_routes(self) -> list[dict[str, Any]]: ...

    def grpc_routes(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A ClusterView frozen at one moment."""

    taken: float
    service_list: list[dict[str, Any]]
    ingress_list: list[dict[str, Any]]
    http_route_list: list[dict[str, Any]]
    grpc_route_list: list[dict[str, Any]]

    @classmethod
    def of(cls, view: ClusterView, taken: float) -> Snapshot:
        return cls(taken, view.services(), view.ingresses(), view.http_routes(), view.grpc_routes())

    def services(self) -> list[dict[str, Any]]:
        return self.service_list

    def service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((s for s in self.service_list if s.get("metadata", {}).get("namespace") == namespace
                     and s.get("metadata", {}).get("name") == name), None)

    def ingresses(self) -> list[dict[str, Any]]:
        return self.ingress_list

    def http_routes(self) -> list[dict[str, Any]]:
        return self.http_route_list

    def grpc_routes(self) -> list[dict[str, Any]]:
        return self.grpc_route_list


class LaggingView:
    """``view`` as it was ``delay`` seconds ago: ``sample()`` (called by the
    router every ``delay / 10`` seconds or so) records snapshots, and reads
    see the newest one at least ``delay`` old (the first one before that)."""

    def __init__(self, view: ClusterView, delay: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._view = view
        self.delay = delay
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshots: deque[Snapshot] = deque([Snapshot.of(view, clock())])

    def sample(self) -> None:
        snapshot = Snapshot.of(self._view, self._clock())
        with self._lock:
            self._snapshots.append(snapshot)

    def current(self) -> Snapshot:
        now = self._clock()
        with self._lock:
            while len(self._snapshots) > 1 and now - self._snapshots[1].taken >= self.delay:
                self._snapshots.popleft()
            return self._snapshots[0]

    def services(self) -> list[dict[str, Any]]:
        return self.current().services()

    def service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.current().service(namespace, name)

    def ingresses(self) -> list[dict[str, Any]]:
        return self.current().ingresses()

    def http_routes(self) -> list[dict[str, Any]]:
        return self.current().http_routes()

    def grpc_routes(self) -> list[dict[str, Any]]:
        return self.current().grpc_routes()
