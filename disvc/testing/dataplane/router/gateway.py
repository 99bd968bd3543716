"""A Gateway's routing of HTTPRoute and GRPCRoute objects, and the route status it writes.

Follows the Gateway API specification (https://gateway-api.sigs.k8s.io/reference/spec/)
and its CRDs (v1; ``sessionPersistence`` from the experimental channel):

- ``hostnames``: exact names, or ``*.`` wildcards matching any name below
  the suffix; an exact hostname beats a wildcard, a longer wildcard a shorter;
- HTTPRoute ``matches``: ``path`` (``PathPrefix`` by path elements, default
  ``/``; ``Exact``), ``headers`` (``Exact``), ``method``; GRPCRoute
  ``method`` (``service``/``method``, ``Exact``) over ``:path``; between
  matches the spec's precedence: Exact path, longer prefix, method, more
  headers, then the oldest route, then namespace/name, then rule order;
- ``backendRefs`` to Services, ``weight`` default 1, one chosen per request
  in proportion to weight (0 gets none); a reference the Gateway cannot
  resolve answers 500, a Service without Ready endpoints 503;
- ``sessionPersistence`` on a rule (``type`` Cookie or Header, ``sessionName``,
  ``absoluteTimeout``, ``idleTimeout``, ``cookieConfig.lifetimeType``): the
  Gateway hands the client a token naming its endpoint and keeps sending the
  token's bearer there while it is valid and the endpoint serves the rule.

Endpoints come from the Services as kube-proxy finds them, but the Gateway
picks among them itself: a Service's ``sessionAffinity`` is not applied.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from disvc.testing.dataplane.pods import PodRegistry
from disvc.testing.dataplane.router.kubeproxy import Endpoint, endpoints, service_port
from disvc.testing.dataplane.router.request import Decision, Request

Object = Mapping[str, Any]
DEFAULT_SESSION_NAME: Final = "GatewaySession"
"""The spec leaves the default token name to the implementation."""
_DURATION = re.compile(r"(\d+)(ms|h|m|s)")
_UNITS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration(text: str | None) -> float | None:
    """Seconds of a Gateway API Duration (``1h30m``, ``10s``, ``500ms``)."""
    if not text:
        return None
    return sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))


def hostname_rank(pattern: str, hostname: str) -> tuple[int, int] | None:
    """(2, length) for an exact match, (1, suffix length) for a wildcard, else None."""
    pattern = pattern.lower()
    if pattern == hostname:
        return (2, len(pattern))
    if pattern.startswith("*.") and hostname.endswith(pattern[1:]) and len(hostname) > len(pattern) - 1:
        return (1, len(pattern))
    return None


def _meta(route: Object) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = route.get("metadata", {})
    return meta


@dataclass(frozen=True, slots=True)
class Match:
    """One rule of one route matching the request, with its precedence."""

    route: Object
    rule_index: int
    precedence: tuple[Any, ...]

    @property
    def rule(self) -> Mapping[str, Any]:
        rule: Mapping[str, Any] = self.route["spec"]["rules"][self.rule_index]
        return rule

    @property
    def namespace(self) -> str:
        return str(_meta(self.route).get("namespace", "default"))


def _headers_match(wanted: Sequence[Mapping[str, Any]], request: Request) -> bool:
    return all(request.header(h.get("name", "")) == h.get("value") for h in wanted)


def _http_match(match: Mapping[str, Any], request: Request) -> tuple[int, int, int, int] | None:
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    value = path.get("value", "/")
    request_path = request.path_only
    if path.get("type", "PathPrefix") == "Exact":
        if request_path != value:
            return None
        exact = 1
    else:
        wanted = [e for e in value.split("/") if e]
        if [e for e in request_path.split("/") if e][: len(wanted)] != wanted:
            return None
        exact = 0
    method = match.get("method")
    if method and request.header(":method") not in (None, method):
        return None
    headers = match.get("headers") or []
    if not _headers_match(headers, request):
        return None
    return (exact, len(value), 1 if method else 0, len(headers))


def _grpc_match(match: Mapping[str, Any], request: Request) -> tuple[int, int, int, int] | None:
    method = match.get("method") or {}
    _, service, name = (request.path_only.split("/", 2) + ["", ""])[:3]
    if method.get("service") and method["service"] != service:
        return None
    if method.get("method") and method["method"] != name:
        return None
    headers = match.get("headers") or []
    if not _headers_match(headers, request):
        return None
    return (1 if method.get("service") else 0, 1 if method.get("method") else 0, 0, len(headers))


def best_match(routes: Sequence[Object], request: Request, *, grpc: bool) -> tuple[bool, Match | None]:
    """(whether any route's hostname matches, the winning rule or None)."""
    hostname = request.hostname
    host_matched = False
    found: list[Match] = []
    matcher = _grpc_match if grpc else _http_match
    for route in routes:
        spec = route.get("spec", {})
        host = max((r for h in spec.get("hostnames") or [] if (r := hostname_rank(h, hostname))), default=None)
        if host is None:
            continue
        host_matched = True
        meta = _meta(route)
        for index, rule in enumerate(spec.get("rules") or []):
            for match in rule.get("matches") or [{}]:
                rank = matcher(match, request)
                if rank is not None:
                    found.append(Match(route, index, (
                        tuple(-x for x in host), tuple(-x for x in rank),
                        meta.get("creationTimestamp") or "", meta.get("namespace", ""), meta.get("name", ""), index)))
    return host_matched, min(found, key=lambda m: m.precedence, default=None)


@dataclass(slots=True)
class _Session:
    rule: tuple[str, str, int]
    address: str
    created: float
    used: float


class Gateway:
    """Routes requests by HTTPRoutes and GRPCRoutes as a Gateway implementation does."""

    def __init__(self, registry: PodRegistry, service: Callable[[str, str], Object | None], *,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._service = service
        self._rng = rng or random.Random()
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def route(self, routes: Sequence[Object], request: Request, *, grpc: bool = False) -> Decision | None:
        """The decision for ``request``; None when no route's hostname matches."""
        host_matched, match = best_match(routes, request, grpc=grpc)
        if not host_matched:
            return None
        if match is None:
            return Decision("gateway", status=404, grpc=grpc)
        backends = [self._backend(match.namespace, ref) for ref in match.rule.get("backendRefs") or []]
        weights = [int(ref.get("weight", 1)) for ref in match.rule.get("backendRefs") or []]
        if sum(weights) <= 0:
            return Decision("gateway", status=500, grpc=grpc)
        persistence = match.rule.get("sessionPersistence")
        if persistence is not None:
            kept = self._session(match, persistence, backends, request)
            if kept is not None:
                return Decision("gateway", kept, grpc=grpc)
        chosen = self._rng.choices(backends, weights)[0]
        if chosen is None:
            return Decision("gateway", status=500, grpc=grpc)
        if not chosen:
            return Decision("gateway", status=503, grpc=grpc)
        picks = list(chosen)
        self._rng.shuffle(picks)
        headers = [] if persistence is None else [self._new_session(match, persistence, picks[0])]
        return Decision("gateway", picks, response_headers=headers, grpc=grpc)

    def _backend(self, namespace: str, ref: Mapping[str, Any]) -> list[Endpoint] | None:
        """The Ready endpoints of a backendRef, or None when it does not resolve."""
        if ref.get("group", "") not in ("", "core") or ref.get("kind", "Service") != "Service":
            return None
        service = self._service(ref.get("namespace", namespace), ref.get("name", ""))
        entry = None if service is None else service_port(service, number=ref.get("port"))
        return None if service is None or entry is None else endpoints(self._registry, service, entry)

    def _session(self, match: Match, persistence: Mapping[str, Any], backends: Sequence[list[Endpoint] | None],
                 request: Request) -> list[Endpoint] | None:
        """The endpoint the request's session token names, when still valid."""
        name = persistence.get("sessionName") or DEFAULT_SESSION_NAME
        token = request.header(name) if persistence.get("type") == "Header" else request.cookie(name)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(token or "")
            if session is None or session.rule != _rule_key(match):
                return None
            absolute = duration(persistence.get("absoluteTimeout"))
            idle = duration(persistence.get("idleTimeout"))
            if (absolute is not None and now - session.created > absolute) or (
                    idle is not None and now - session.used > idle):
                del self._sessions[token or ""]
                return None
            serving = [e for b in backends if b for e in b]
            kept = next((e for e in serving if e.address == session.address), None)
            if kept is None:
                return None
            session.used = now
        return [kept] + [e for e in serving if e is not kept]

    def _new_session(self, match: Match, persistence: Mapping[str, Any], endpoint: Endpoint) -> tuple[str, str]:
        token = f"{self._rng.getrandbits(64):016x}"
        now = self._clock()
        with self._lock:
            self._sessions[token] = _Session(_rule_key(match), endpoint.address, now, now)
        name = persistence.get("sessionName") or DEFAULT_SESSION_NAME
        if persistence.get("type") == "Header":
            return name, token
        path = ((match.rule.get("matches") or [{}])[0].get("path") or {}).get("value", "/")
        cookie = f"{name}={token}; Path={path}; HttpOnly"
        lifetime = duration(persistence.get("absoluteTimeout"))
        if (persistence.get("cookieConfig") or {}).get("lifetimeType") == "Permanent" and lifetime is not None:
            cookie += f"; Max-Age={int(lifetime)}"
        return "Set-Cookie", cookie


def _rule_key(match: Match) -> tuple[str, str, int]:
    return (match.namespace, str(_meta(match.route).get("name", "")), match.rule_index)


def route_status(route: Object, service: Callable[[str, str], Object | None], *, controller_name: str,
                 gateway_exists: Callable[[str, str], bool] | None = None,
                 now: datetime | None = None) -> dict[str, Any]:
    """The ``status`` a Gateway controller writes on ``route``: per parentRef,
    ``Accepted`` (False ``NoMatchingParent`` when the Gateway is missing) and
    ``ResolvedRefs`` (False ``InvalidKind`` or ``BackendNotFound``)."""
    meta = _meta(route)
    namespace = str(meta.get("namespace", "default"))
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    generation = meta.get("generation", 1)

    def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        return {"type": kind, "status": "True" if ok else "False", "reason": reason, "message": message,
                "observedGeneration": generation, "lastTransitionTime": stamp}

    resolved = condition("ResolvedRefs", True, "ResolvedRefs", "All references resolved")
    for rule in route.get("spec", {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            ref_ns = ref.get("namespace", namespace)
            if ref.get("group", "") not in ("", "core") or ref.get("kind", "Service") != "Service":
                resolved = condition("ResolvedRefs", False, "InvalidKind",
                                     f"backendRef {ref.get('name')}: kind {ref.get('kind')} is not supported")
                break
            if service(ref_ns, ref.get("name", "")) is None:
                resolved = condition("ResolvedRefs", False, "BackendNotFound",
                                     f"Service {ref_ns}/{ref.get('name')} not found")
                break
        if resolved["status"] == "False":
            break
    parents = []
    for parent in route.get("spec", {}).get("parentRefs") or []:
        ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", **parent}
        found = gateway_exists is None or gateway_exists(ref.get("namespace", namespace), ref.get("name", ""))
        accepted = (condition("Accepted", True, "Accepted", "Route accepted") if found else
                    condition("Accepted", False, "NoMatchingParent", f"Gateway {ref.get('name')} not found"))
        parents.append({"parentRef": ref, "controllerName": controller_name, "conditions": [accepted, resolved]})
    return {"parents": parents}
