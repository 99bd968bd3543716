"""The two kinds of child Service.

``N`` is the stable in-cluster endpoint: it selects every replica of every
live generation (``disvc: N``). ``N-v<g>`` is one generation's endpoint
(``disvc.group: N-v<g>``); the Ingress and ``status.address`` point at the
serving generation's, which is how a rollout switches traffic in one write.
Both pin in-cluster clients to a replica as ``spec.sessionAffinity`` asks
(``affinity``: ``ClientIP`` by default) and expose port 80 in front of the
model server's port. In KServe's Knative mode they reach the pods through
queue-proxy instead, and select only the predictor pods of the current
revision (``knative``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from disvc.builders import affinity, knative, names, ownership
from disvc.builders.protocol import GRPC_APP_PROTOCOL, ServingProtocol
from disvc.builders.spec import DisvcSpec
from disvc.builders.types import SERVICE_API_VERSION, SERVICE_KIND, Obj


def top_service(spec: DisvcSpec, protocol: ServingProtocol, isvcs: Iterable[Obj] = ()) -> Obj:
    """Service ``N``, selecting every ISVC of the DISVC (``isvcs``: the live
    ones it selects, which in Knative mode decide the revision it pins)."""
    return _service(
        spec,
        names.top_service_name(spec.name),
        names.child_labels(spec.name),
        None,
        _selector(names.child_labels(spec.name), protocol, isvcs),
        protocol,
    )


def generation_service(
    spec: DisvcSpec,
    generation: int,
    protocol: ServingProtocol,
    template_hash: str,
    isvcs: Iterable[Obj] = (),
) -> Obj:
    """Service ``N-v<g>``, selecting only generation ``g``'s ISVCs.

    It carries the generation's label and template hash like the ISVCs do, so
    the generation stays identifiable from live objects at zero replicas."""
    return _service(
        spec,
        names.generation_name(spec.name, generation),
        names.generation_labels(spec.name, generation),
        {names.TEMPLATE_HASH_ANNOTATION: template_hash},
        _selector(names.generation_selector(spec.name, generation), protocol, isvcs),
        protocol,
    )


def _selector(
    base: Mapping[str, str], protocol: ServingProtocol, isvcs: Iterable[Obj]
) -> dict[str, str]:
    return knative.pod_selector(base, isvcs) if knative.is_knative_protocol(protocol) else dict(base)


def _service(
    spec: DisvcSpec,
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str] | None,
    selector: dict[str, str],
    protocol: ServingProtocol,
) -> Obj:
    port: dict[str, Any] = {
        "name": protocol.port_name,
        "port": names.SERVICE_PORT,
        "protocol": "TCP",
        "targetPort": protocol.target_port,
    }
    if protocol.is_grpc:
        port["appProtocol"] = GRPC_APP_PROTOCOL
    return {
        "apiVersion": SERVICE_API_VERSION,
        "kind": SERVICE_KIND,
        "metadata": ownership.child_metadata(
            spec.name, spec.uid, name, spec.namespace, labels, annotations
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            **affinity.service_fields(spec.affinity),
            "ports": [port],
        },
    }
