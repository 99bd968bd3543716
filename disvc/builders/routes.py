"""The routes: which objects carry external requests where a step's ``Traffic`` says.

``spec.ingress`` chooses the kind: an HTTPRoute (``httproute``) when it names
a Gateway, one weighted ``backendRef`` per generation during a canary; else
the Ingress ``N`` (``ingress``), plus the NGINX canary Ingress ``N-canary``
during a canary. Either names the Service of the generation the traffic goes
to, or the DISVC-level Service ``N`` while a rolling rollout routes to every
generation. Also here: which Services a step routes to and which route names
serve the URL, so a foreign object holding one of them is never routed to or
reported as our URL.
"""

from __future__ import annotations

from collections.abc import Collection

from disvc.builders import diff, httproute, ingress, names
from disvc.builders.diff import ChildId
from disvc.builders.protocol import ServingProtocol
from disvc.builders.spec import DisvcSpec
from disvc.builders.strategies.base import Traffic
from disvc.builders.types import Obj


def for_traffic(
    spec: DisvcSpec,
    traffic: Traffic,
    route_protocol: ServingProtocol,
    canary_protocol: ServingProtocol,
    domain: str,
    default_class: str | None,
) -> list[Obj]:
    """The applied route objects sending external requests as ``traffic`` says
    (none without ``spec.ingress``). ``route_protocol`` is the primary
    backend's, ``canary_protocol`` the canary generation's."""
    if not spec.ingress.enabled:
        return []
    if spec.ingress.gateway is not None:
        return [diff.applied(httproute.http_route(spec, _weighted(spec, traffic), domain))]
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
    return {("Ingress", names.ingress_name(disvc_name)), ("HTTPRoute", names.route_name(disvc_name))}


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
