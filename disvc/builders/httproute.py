"""The Gateway API route ``N``: the external endpoint through a Gateway.

Used instead of the Ingress(es) when the DISVC routes through a Gateway
(``spec.ingress.gateway``, else the controller's default Gateway; see
``routes``), for every strategy. A REST model gets an HTTPRoute whose one
rule sends ``/`` to the Service the rollout routes to; a gRPC model gets a
GRPCRoute (standard channel since Gateway API v1.1) whose one rule takes
every method, where that CRD is installed. During a canary the rule carries
two weighted ``backendRefs`` (the serving generation's Service and the
canary's). Where the installed route CRD serves it, the rule carries the
``sessionPersistence`` that ``affinity`` derives from
``spec.sessionAffinity``. Fields follow ``gateway.networking.k8s.io/v1``.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from disvc.builders import names, ownership
from disvc.builders.ingress import host
from disvc.builders.spec import DisvcSpec, GatewayRef
from disvc.builders.types import GRPCROUTE_API_VERSION, HTTPROUTE_API_VERSION, Obj

GATEWAY_GROUP = "gateway.networking.k8s.io"
RouteKind: TypeAlias = Literal["HTTPRoute", "GRPCRoute"]


def parent_ref(gateway: GatewayRef) -> dict[str, Any]:
    """The route's ``parentRefs`` entry for ``gateway``."""
    parent: dict[str, Any] = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": gateway.name}
    if gateway.namespace:
        parent["namespace"] = gateway.namespace
    if gateway.section_name:
        parent["sectionName"] = gateway.section_name
    return parent


def http_route(
    spec: DisvcSpec,
    backends: list[tuple[str, int | None]],
    domain: str,
    gateway: GatewayRef | None = None,
    kind: RouteKind = "HTTPRoute",
    persistence: dict[str, Any] | None = None,
) -> Obj:
    """Route ``N`` of ``kind`` attached to ``gateway`` (default
    ``spec.ingress.gateway``) for ``backends``: (Service name, weight or
    None for one backend)."""
    gateway = gateway or spec.ingress.gateway
    assert gateway is not None
    refs: list[dict[str, Any]] = []
    for service_name, weight in backends:
        ref: dict[str, Any] = {
            "group": "",
            "kind": "Service",
            "name": service_name,
            "port": names.SERVICE_PORT,
        }
        if weight is not None:
            ref["weight"] = weight
        refs.append(ref)
    rule: dict[str, Any] = (
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": refs}
        if kind == "HTTPRoute"
        else {"backendRefs": refs}  # no matches: every gRPC method
    )
    if persistence is not None:
        rule["sessionPersistence"] = persistence
    return {
        "apiVersion": HTTPROUTE_API_VERSION if kind == "HTTPRoute" else GRPCROUTE_API_VERSION,
        "kind": kind,
        "metadata": ownership.child_metadata(
            spec.name,
            spec.uid,
            names.route_name(spec.name),
            spec.namespace,
            names.child_labels(spec.name),
            dict(spec.ingress.annotations) if spec.ingress.annotations else None,
        ),
        "spec": {
            "parentRefs": [parent_ref(gateway)],
            "hostnames": [host(spec, domain)],
            "rules": [rule],
        },
    }
