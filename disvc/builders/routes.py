"""The routes: which objects carry external requests where a step's ``Traffic`` says.

``Routing`` chooses the kind. A DISVC routes through a Gateway when it names
one (``spec.ingress.gateway``), or when the controller has a default
Gateway, the Gateway API CRDs are installed and the DISVC does not ask for
an Ingress class (``spec.ingress.className``: an explicit Ingress wins over
the default Gateway). Through a Gateway it gets an HTTPRoute, or a GRPCRoute
for a gRPC model where that CRD is installed (``httproute``), one weighted
``backendRef`` per generation during a canary; else the Ingress ``N``
(``ingress``), plus the NGINX canary Ingress ``N-canary`` during a canary. Either names the Service of the generation the traffic goes
to, or the DISVC-level Service ``N`` while a rolling rollout routes to every
generation. Also here: which Services a step routes to and which route names
serve the URL, so a foreign object holding one of them is never routed to or
reported as our URL.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from disvc.builders import affinity, diff, httproute, ingress, names
from disvc.builders.diff import ChildId
from disvc.builders.httproute import RouteKind
from disvc.builders.protocol import ServingProtocol
from disvc.builders.spec import DisvcSpec, GatewayRef
from disvc.builders.strategies.base import Traffic
from disvc.builders.types import Obj


@dataclass(frozen=True, slots=True)
class Routing:
    """How one DISVC's external routes are built (from its spec and the
    controller's flags and what the cluster serves)."""

    domain: str = "example.com"
    default_class: str | None = None
    gateway: GatewayRef | None = None
    """The Gateway the routes attach to; None: an Ingress."""
    grpc_route: bool = False
    """The GRPCRoute CRD is installed: a gRPC model gets one."""
    persistence: frozenset[str] = frozenset()
    """Route kinds whose installed CRD serves ``sessionPersistence``."""

    def route_kind(self, protocol: ServingProtocol) -> RouteKind:
        return "GRPCRoute" if protocol.is_grpc and self.grpc_route else "HTTPRoute"


def gateway_for(spec: DisvcSpec, default_gateway: GatewayRef | None, gateway_api: bool) -> GatewayRef | None:
    """The Gateway ``spec`` routes through: its own, else the default one
    where Gateway API is served and no Ingress class is asked for."""
    if spec.ingress.gateway is not None:
        return spec.ingress.gateway
    if default_gateway is not None and gateway_api and not spec.ingress.class_name:
        return default_gateway
    return None


def for_traffic(
    spec: DisvcSpec,
    traffic: Traffic,
    route_protocol: ServingProtocol,
    canary_protocol: ServingProtocol,
    routing: Routing,
) -> list[Obj]:
    """The applied route objects sending external requests as ``traffic`` says
    (none without ``spec.ingress``). ``route_protocol`` is the primary
    backend's, ``canary_protocol`` the canary generation's."""
    if not spec.ingress.enabled:
        return []
    domain, default_class = routing.domain, routing.default_class
    if routing.gateway is not None:
        kind = routing.route_kind(route_protocol)
        persistence = (
            affinity.session_persistence(spec.affinity) if kind in routing.persistence else None
        )
        return [
            diff.applied(
                httproute.http_route(
                    spec, _weighted(spec, traffic), domain, routing.gateway, kind, persistence
                )
            )
        ]
    objects = [_ingress(spec, _backend(spec, traffic.primary), route_protocol, domain, default_class)]
    if traffic.canary is not None:
        objects.append(
            _ingress(
                spec,
                names.generation_name(spec.name, traffic.canary),
                canary_protocol,
                domain,
                default_class,
                canary_weight=traffic.canary_percent,
            )
        )
    return objects


def affinity_paths(
    spec: DisvcSpec, traffic: Traffic, route_protocol: ServingProtocol, routing: Routing
) -> list[affinity.PathReport]:
    """Where ``spec.sessionAffinity`` holds on each path a client can take."""
    reports = [affinity.service_path(spec.affinity)]
    if not spec.ingress.enabled:
        return reports
    canary = traffic.canary is not None
    if routing.gateway is not None:
        kind = routing.route_kind(route_protocol)
        served = kind in routing.persistence
        reports.append(affinity.route_path(spec.affinity, kind, served, canary=False))
        if canary:
            reports.append(affinity.route_path(spec.affinity, kind, served, canary=True))
        return reports
    annotations = ingress.annotations_for(spec, route_protocol)
    reports.append(affinity.ingress_path(annotations, canary=False))
    if canary:
        reports.append(affinity.ingress_path(annotations, canary=True))
    return reports


def routed_services(spec: DisvcSpec, traffic: Traffic) -> set[ChildId]:
    """The Services ``traffic`` sends external requests to."""
    routed: set[ChildId] = {("Service", _backend(spec, traffic.primary))}
    if traffic.canary is not None:
        routed.add(("Service", names.generation_name(spec.name, traffic.canary)))
    return routed


def route_ids(disvc_name: str) -> set[ChildId]:
    """Every route name a DISVC may use, whichever kind its spec picks."""
    return {*_url_route_ids(disvc_name), ("Ingress", names.canary_ingress_name(disvc_name))}


def url(spec: DisvcSpec, domain: str, conflicts: Collection[ChildId | None]) -> str | None:
    """``status.url``: None without ``spec.ingress``, and None while a foreign
    Ingress (or HTTPRoute) holds our route's name: it does not serve our URL.

    Raises ``InvalidSpec`` as ``ingress.url`` does."""
    if not spec.ingress.enabled:
        return None
    address = ingress.url(spec, domain)
    if _url_route_ids(spec.name) & set(conflicts):
        return None
    return address


def _url_route_ids(disvc_name: str) -> set[ChildId]:
    route = names.route_name(disvc_name)
    return {("Ingress", names.ingress_name(disvc_name)), ("HTTPRoute", route), ("GRPCRoute", route)}


def _weighted(spec: DisvcSpec, traffic: Traffic) -> list[tuple[str, int | None]]:
    """The HTTPRoute's backendRefs: one Service, or the canary split by weight."""
    primary = _backend(spec, traffic.primary)
    if traffic.canary is None:
        return [(primary, None)]
    return [
        (primary, 100 - traffic.canary_percent),
        (names.generation_name(spec.name, traffic.canary), traffic.canary_percent),
    ]


def _backend(spec: DisvcSpec, generation_number: int | None) -> str:
    if generation_number is None:
        return names.top_service_name(spec.name)
    return names.generation_name(spec.name, generation_number)


def _ingress(
    spec: DisvcSpec,
    backend: str,
    serving_protocol: ServingProtocol,
    domain: str,
    default_class: str | None,
    canary_weight: int | None = None,
) -> Obj:
    return diff.applied(
        ingress.ingress(spec, backend, serving_protocol, domain, default_class, canary_weight)
    )
