"""The HTTPRoute ``N``: the external endpoint through a Gateway API Gateway.

Used instead of the Ingress(es) when ``spec.ingress.gateway`` names a parent
Gateway, for every strategy. Its one rule sends ``/`` to the Service the
rollout routes to; during a canary it carries two weighted ``backendRefs``
(the serving generation's Service and the canary's). Fields follow the
Gateway API v1.0.0 standard channel (``gateway.networking.k8s.io/v1``).
"""

from __future__ import annotations

from typing import Any

from disvc.builders import names, ownership
from disvc.builders.ingress import host
from disvc.builders.spec import DisvcSpec
from disvc.builders.types import HTTPROUTE_API_VERSION, HTTPROUTE_KIND, Obj

GATEWAY_GROUP = "gateway.networking.k8s.io"


def http_route(spec: DisvcSpec, backends: list[tuple[str, int | None]], domain: str) -> Obj:
    """HTTPRoute ``N`` for ``backends``: (Service name, weight or None for one backend)."""
    gateway = spec.ingress.gateway
    assert gateway is not None
    parent: dict[str, Any] = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": gateway.name}
    if gateway.namespace:
        parent["namespace"] = gateway.namespace
    if gateway.section_name:
        parent["sectionName"] = gateway.section_name
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
    return {
        "apiVersion": HTTPROUTE_API_VERSION,
        "kind": HTTPROUTE_KIND,
        "metadata": ownership.child_metadata(
            spec.name,
            spec.uid,
            names.route_name(spec.name),
            spec.namespace,
            names.child_labels(spec.name),
            dict(spec.ingress.annotations) if spec.ingress.annotations else None,
        ),
        "spec": {
            "parentRefs": [parent],
            "hostnames": [host(spec, domain)],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": refs,
                }
            ],
        },
    }
