"""Which protocol the predictor serves (REST or gRPC) and on which container port.

The Services' target port and port name, and the Ingress backend protocol,
follow from it. KServe's convention: a container port named ``h2c`` or
``grpc`` means the server speaks gRPC on that port; otherwise REST on 8080
(or on the port named ``http1``/``http`` when the user declared one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

REST_PORT: Final = 8080
"""KServe's default REST port for model servers."""

GRPC_PORT_NAMES: Final = frozenset({"h2c", "grpc"})
REST_PORT_NAMES: Final = frozenset({"http1", "http"})
GRPC_APP_PROTOCOL: Final = "kubernetes.io/h2c"
GRPC_SERVICE_PORT_NAME: Final = "grpc"
"""How the child Services name their port when the model serves gRPC."""


@dataclass(frozen=True, slots=True)
class ServingProtocol:
    """How the children reach the model server."""

    is_grpc: bool
    target_port: int | str
    """Container port the Services forward port 80 to: a number, or a port
    name resolved per pod (Knative mode: queue-proxy's, see ``knative``)."""

    @property
    def port_name(self) -> str:
        return GRPC_SERVICE_PORT_NAME if self.is_grpc else "http"


REST: Final = ServingProtocol(is_grpc=False, target_port=REST_PORT)


def of(template: Mapping[str, Any]) -> ServingProtocol:
    """The protocol of the predictor in an ISVC spec template.

    Looks at the model's ports, or at the first custom container's when the
    predictor uses ``containers`` instead of ``model``."""
    predictor = template.get("predictor")
    if not isinstance(predictor, Mapping):
        return REST
    container = predictor.get("model")
    if not isinstance(container, Mapping):
        containers = predictor.get("containers")
        first = containers[0] if isinstance(containers, list) and containers else None
        container = first if isinstance(first, Mapping) else None
    if container is None:
        return REST
    ports = container.get("ports")
    if not isinstance(ports, list):
        return REST
    rest = REST
    for port in ports:
        if not isinstance(port, Mapping):
            continue
        number = port.get("containerPort")
        if not isinstance(number, int) or isinstance(number, bool):
            continue
        if port.get("name") in GRPC_PORT_NAMES:
            return ServingProtocol(is_grpc=True, target_port=number)
        if port.get("name") in REST_PORT_NAMES and rest is REST:
            rest = ServingProtocol(is_grpc=False, target_port=number)
    return rest


def of_service(service: Mapping[str, Any]) -> ServingProtocol | None:
    """The protocol a child Service we built forwards with (from its first port),
    or None when its ports are not recognisable."""
    spec = service.get("spec")
    ports = spec.get("ports") if isinstance(spec, Mapping) else None
    port = ports[0] if isinstance(ports, list) and ports else None
    if not isinstance(port, Mapping):
        return None
    target = port.get("targetPort")
    if isinstance(target, bool) or not isinstance(target, (int, str)):
        return None
    return ServingProtocol(is_grpc=port.get("name") == GRPC_SERVICE_PORT_NAME, target_port=target)
