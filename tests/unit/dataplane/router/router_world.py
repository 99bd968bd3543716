"""Plain-dict objects and pods for the router's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from disvc.testing.dataplane.pods import ContainerPort, Pod, PodRegistry
from disvc.testing.dataplane.router.request import Request

NGINX = "nginx.ingress.kubernetes.io/"


@dataclass
class FakeView:
    service_list: list[dict[str, Any]] = field(default_factory=list)
    ingress_list: list[dict[str, Any]] = field(default_factory=list)
    http_route_list: list[dict[str, Any]] = field(default_factory=list)
    grpc_route_list: list[dict[str, Any]] = field(default_factory=list)

    def services(self) -> list[dict[str, Any]]:
        return list(self.service_list)

    def service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((s for s in self.service_list if s["metadata"]["namespace"] == namespace
                     and s["metadata"]["name"] == name), None)

    def ingresses(self) -> list[dict[str, Any]]:
        return list(self.ingress_list)

    def http_routes(self) -> list[dict[str, Any]]:
        return list(self.http_route_list)

    def grpc_routes(self) -> list[dict[str, Any]]:
        return list(self.grpc_route_list)


def service(name: str, selector: dict[str, str], *, target: int | str = 8080, port: int = 80,
            affinity: bool = False, timeout: int | None = None, ns: str = "default") -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": target}]}
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
        if timeout is not None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": timeout}}
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def ingress(name: str, host: str, svc: str, *, path: str = "/", path_type: str = "Prefix",
            annotations: dict[str, str] | None = None, ns: str = "default", created: str = "2024-01-01T00:00:00Z",
            ) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "creationTimestamp": created,
                         "annotations": {NGINX + k: v for k, v in (annotations or {}).items()}},
            "spec": {"rules": [{"host": host, "http": {"paths": [
                {"path": path, "pathType": path_type,
                 "backend": {"service": {"name": svc, "port": {"number": 80}}}}]}}]}}


def http_route(name: str, hostnames: list[str], refs: list[tuple[str, int]], *, ns: str = "default",
               persistence: dict[str, Any] | None = None, path: str = "/") -> dict[str, Any]:
    rule: dict[str, Any] = {"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                            "backendRefs": [{"name": n, "port": 80, "weight": w} for n, w in refs]}
    if persistence is not None:
        rule["sessionPersistence"] = persistence
    return {"metadata": {"namespace": ns, "name": name, "generation": 3},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": hostnames, "rules": [rule]}}


def add_pods(registry: PodRegistry, isvc: str, count: int, *, ns: str = "default", ready: bool = True,
             port: int = 8080, port_name: str | None = "http", first: int = 0) -> list[Pod]:
    pods = []
    for i in range(first, first + count):
        pod = Pod(ns, f"{isvc}-{i}", isvc, {"app": isvc}, registry.allocate_ip(),
                  (ContainerPort(port, port_name),), ready=ready)
        registry.add(pod)
        pods.append(pod)
    return pods


def request(host: str, client: str = "127.0.0.2", path: str = "/", **headers: str) -> Request:
    return Request(client, host, path, tuple((k.replace("_", "-").lower(), v) for k, v in headers.items()))


def set_cookie_value(header: str) -> tuple[str, str]:
    name, _, rest = header.partition("=")
    return name, rest.split(";", 1)[0]
