"""What the router reads from the API: Services and the routes to them.

One informer per kind (``disvc.testing.informer``), so the router follows
every change as a watch reports it, as kube-proxy, ingress-nginx and a
Gateway implementation each do. Gateway API kinds that are not installed
read as empty and are picked up once their CRDs appear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Self

from kubernetes import client

from disvc.testing.informer import Informer

JsonObject = dict[str, Any]

PATHS: Final = {
    "services": "/api/v1/services",
    "ingresses": "/apis/networking.k8s.io/v1/ingresses",
    "httproutes": "/apis/gateway.networking.k8s.io/v1/httproutes",
    "grpcroutes": "/apis/gateway.networking.k8s.io/v1/grpcroutes",
    "gateways": "/apis/gateway.networking.k8s.io/v1/gateways",
    "gatewayclasses": "/apis/gateway.networking.k8s.io/v1/gatewayclasses",
}
USER_AGENT: Final = "disvc-dataplane-router"
CLUSTER_SCOPED: Final = frozenset({"gatewayclasses"})


class InformerView:
    """The router's view of the cluster, kept current by watches."""

    def __init__(self, api_client: client.ApiClient, namespace: str | None = None) -> None:
        self._informers = {
            kind: Informer(
                api_client, path, namespace=None if kind in CLUSTER_SCOPED else namespace, user_agent=USER_AGENT
            )
            for kind, path in PATHS.items()
        }

    def start(self, timeout: float = 30.0) -> Self:
        for informer in self._informers.values():
            informer.start()
        for kind, informer in self._informers.items():
            if not informer.wait_synced(timeout):
                raise TimeoutError(f"the router's {kind} informer did not sync in {timeout} s")
        return self

    def stop(self) -> None:
        for informer in self._informers.values():
            informer.stop()

    def add_listener(self, listener: Callable[[], None]) -> None:
        for informer in self._informers.values():
            informer.add_listener(listener)

    def services(self) -> list[JsonObject]:
        return self._informers["services"].items()

    def service(self, namespace: str, name: str) -> JsonObject | None:
        return self._informers["services"].get(namespace, name)

    def ingresses(self) -> list[JsonObject]:
        return self._informers["ingresses"].items()

    def http_routes(self) -> list[JsonObject]:
        return self._informers["httproutes"].items()

    def grpc_routes(self) -> list[JsonObject]:
        return self._informers["grpcroutes"].items()

    def gateways(self) -> list[JsonObject]:
        return self._informers["gateways"].items()

    def gateway_classes(self) -> list[JsonObject]:
        return self._informers["gatewayclasses"].items()
