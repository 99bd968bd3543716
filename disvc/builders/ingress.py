"""The Ingress ``N``: the external endpoint, routing ``/`` to one Service.

Which Service it names is the rollout's traffic switch (a generation's
``N-v<g>``, or the DISVC-level ``N`` while a rolling rollout runs both; see
``strategies``). During a canary a second Ingress ``N-canary`` for the same
host carries NGINX's canary annotations and sends its weight to the new
generation. Host, class and TLS come from ``spec.ingress`` with the
controller's flags as defaults.
"""

from __future__ import annotations

from typing import Any, Final

from disvc.builders import affinity, names, ownership
from disvc.builders.protocol import ServingProtocol
from disvc.builders.spec import DisvcSpec, InvalidSpec, is_dns_subdomain
from disvc.builders.types import INGRESS_API_VERSION, INGRESS_KIND, Obj

CANARY_ANNOTATION: Final = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT_ANNOTATION: Final = "nginx.ingress.kubernetes.io/canary-weight"


def host(spec: DisvcSpec, domain: str) -> str:
    """The Ingress host: ``spec.ingress.host`` or ``N-NS.<domain>``.

    Raises ``InvalidSpec`` when the default host is not a valid DNS name
    (``N-NS`` longer than a DNS label), which only an override can fix."""
    if spec.ingress.host is not None:
        return spec.ingress.host
    value = names.default_ingress_host(spec.name, spec.namespace, domain)
    if not is_dns_subdomain(value):
        raise InvalidSpec(
            "spec.ingress.host",
            f"the default host {value!r} is not a valid DNS name "
            f"(each label at most {names.MAX_NAME_LENGTH} characters); set spec.ingress.host",
        )
    return value


def url(spec: DisvcSpec, domain: str) -> str:
    """``status.url``: the external URL, https when the Ingress terminates TLS."""
    scheme = "https" if spec.ingress.tls_secret_name else "http"
    return f"{scheme}://{host(spec, domain)}"


def annotations_for(spec: DisvcSpec, protocol: ServingProtocol, canary_weight: int | None = None) -> dict[str, str]:
    """The Ingress's annotations: affinity (``affinity``) under the user's
    ``spec.ingress.annotations`` (theirs win), then the canary and protocol
    annotations the route needs to work at all."""
    annotations = {
        **affinity.ingress_annotations(spec.affinity, canary=canary_weight is not None),
        **(spec.ingress.annotations or {}),
    }
    if canary_weight is not None:
        annotations[CANARY_ANNOTATION] = "true"
        annotations[CANARY_WEIGHT_ANNOTATION] = str(canary_weight)
    if protocol.is_grpc:
        annotations[names.GRPC_BACKEND_ANNOTATION] = "GRPC"
    return annotations


def ingress(
    spec: DisvcSpec,
    backend: str,
    protocol: ServingProtocol,
    domain: str,
    default_class: str | None,
    canary_weight: int | None = None,
) -> Obj:
    """Ingress ``N`` routing every path to Service ``backend`` port 80; with
    ``canary_weight``, the canary Ingress ``N-canary`` taking that percentage
    of the host's requests instead."""
    ingress_host = host(spec, domain)
    annotations = annotations_for(spec, protocol, canary_weight)
    name = names.ingress_name(spec.name) if canary_weight is None else names.canary_ingress_name(spec.name)
    body: dict[str, Any] = {}
    class_name = spec.ingress.class_name or default_class
    if class_name:
        body["ingressClassName"] = class_name
    body["rules"] = [
        {
            "host": ingress_host,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {
                            "service": {
                                "name": backend,
                                "port": {"number": names.SERVICE_PORT},
                            }
                        },
                    }
                ]
            },
        }
    ]
    if spec.ingress.tls_secret_name:
        body["tls"] = [{"hosts": [ingress_host], "secretName": spec.ingress.tls_secret_name}]
    return {
        "apiVersion": INGRESS_API_VERSION,
        "kind": INGRESS_KIND,
        "metadata": ownership.child_metadata(
            spec.name,
            spec.uid,
            name,
            spec.namespace,
            names.child_labels(spec.name),
            annotations,
        ),
        "spec": body,
    }

