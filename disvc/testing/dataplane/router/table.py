"""The routing decision: which router's rules a request's host falls under.

Order, as a cluster's DNS and edge would resolve a name:
(a) an in-cluster Service name, ``<svc>.<ns>.svc.cluster.local``,
    ``<svc>.<ns>.svc`` or ``<svc>.<ns>`` (``:port``, default 80), of a
    Service that exists → kube-proxy;
(b) a hostname of an HTTPRoute (GRPCRoute for gRPC) → the Gateway;
(c) an Ingress host → ingress-nginx;
(d) anything else → 404, as ingress-nginx's default backend answers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from disvc.testing.dataplane.pods import PodRegistry
from disvc.testing.dataplane.router.gateway import Gateway
from disvc.testing.dataplane.router.kubeproxy import KubeProxy
from disvc.testing.dataplane.router.nginx import Nginx
from disvc.testing.dataplane.router.request import Decision, Request
from disvc.testing.dataplane.router.view import ClusterView

_CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc", "")


def service_name(host: str) -> tuple[str, str, int] | None:
    """(namespace, service, port) of an in-cluster host name, or None."""
    hostname, _, port = host.strip().lower().partition(":")
    if port and not port.isdigit():
        return None
    for suffix in _CLUSTER_SUFFIXES:
        if suffix and not hostname.endswith(suffix):
            continue
        labels = hostname[: len(hostname) - len(suffix)].split(".")
        if len(labels) == 2 and all(labels):
            return labels[1], labels[0], int(port or 80)
    return None


class RoutingTable:
    """kube-proxy, the Gateway and ingress-nginx over one view and one pod registry."""

    def __init__(self, view: ClusterView, registry: PodRegistry, *, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.view = view
        rng = rng or random.Random()
        self.kube_proxy = KubeProxy(registry, rng=rng, clock=clock)
        self.gateway = Gateway(registry, view.service, rng=rng, clock=clock)
        self.nginx = Nginx(registry, view.service, rng=rng)

    def route(self, request: Request, *, grpc: bool = False) -> Decision:
        """Where ``request`` goes; ``grpc`` for h2c requests (GRPCRoutes before HTTPRoutes)."""
        in_cluster = service_name(request.host)
        if in_cluster is not None:
            namespace, name, port = in_cluster
            service = self.view.service(namespace, name)
            if service is not None:
                found = self.kube_proxy.pick(service, port, request.client_ip)
                if found is None:
                    # no such Service port: nothing listens at that virtual address
                    return Decision("kube-proxy", status=502)
                if not found:
                    return Decision("kube-proxy", status=503)
                return Decision("kube-proxy", found, per_connection=True)
        kinds = [(self.view.grpc_routes, True)] if grpc else []
        kinds.append((self.view.http_routes, False))
        for routes, as_grpc in kinds:
            decision = self.gateway.route(routes(), request, grpc=as_grpc)
            if decision is not None:
                return decision
        decision = self.nginx.route(self.view.ingresses(), request)
        if decision is not None:
            return decision
        return Decision("default-backend", status=404)
