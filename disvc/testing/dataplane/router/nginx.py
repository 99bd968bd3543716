"""ingress-nginx's routing of Ingress objects.

Follows the ingress-nginx documentation: "Annotations"
(https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/),
its Canary, Session Affinity, Cookie affinity, Custom NGINX upstream hashing
and Backend Protocol sections, "Ingress Path Matching", and the balancer it
runs (``rootfs/etc/nginx/lua/balancer.lua`` and ``balancer/sticky*.lua``,
``chash.lua``) for the details the docs leave open:

- a request's server is the Ingress host equal to its host, else a ``*.``
  wildcard host (one label), else rules without a host; its location is an
  ``Exact`` path equal to the path, else the longest ``Prefix`` (by path
  elements) or ``ImplementationSpecific`` (plain prefix) path; the oldest
  Ingress wins a host and path two of them claim;
- the backend Service's endpoints are used directly: the Service's
  ``sessionAffinity`` is not applied (ingress-nginx balances itself);
- balancing per request: round robin; ``upstream-hash-by`` (consistent
  hashing of an nginx variable); ``affinity: cookie`` (``balanced`` finds
  the endpoint by hashing the cookie's key, ``persistent`` by the endpoint
  the key names), setting the cookie ``<key>|<backend key>`` when it picks;
- a canary Ingress (``canary: "true"``) for the same host and path adds an
  alternative backend; per request: a request whose affinity cookie names
  the main backend stays there, one that names the canary goes there, else
  ``canary-by-header`` (``-value``, ``-pattern``; ``always``/``never``),
  then ``canary-by-cookie`` (``always``/``never``), then ``canary-weight``
  out of ``canary-weight-total`` (default 100);
- the canary keeps its own ``upstream-hash-by``; its cookie affinity is the
  main Ingress's unless the canary says ``affinity-canary-behavior: legacy``
  (then its own annotations);
- ``backend-protocol: GRPC``/``GRPCS`` marks the route gRPC (h2c here);
- a backend without Ready endpoints answers 503.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from disvc.testing.dataplane.pods import PodRegistry
from disvc.testing.dataplane.router import hashring
from disvc.testing.dataplane.router.kubeproxy import Endpoint, endpoints, service_port
from disvc.testing.dataplane.router.request import Decision, Request

PREFIX: Final = "nginx.ingress.kubernetes.io/"
DEFAULT_COOKIE: Final = "INGRESSCOOKIE"
_VARIABLE = re.compile(r"\$(\w+)")

Object = Mapping[str, Any]


def annotation(ingress: Object, name: str) -> str | None:
    value = (ingress.get("metadata", {}).get("annotations") or {}).get(PREFIX + name)
    return None if value is None else str(value)


def is_canary(ingress: Object) -> bool:
    return (annotation(ingress, "canary") or "").lower() == "true"


@dataclass(frozen=True, slots=True)
class Location:
    """One host and path of one Ingress, and the Service port it sends to."""

    ingress: Object
    host: str
    path: str
    path_type: str
    service: str
    port: int | str

    @property
    def namespace(self) -> str:
        return str(self.ingress.get("metadata", {}).get("namespace", "default"))

    @property
    def upstream(self) -> str:
        """ingress-nginx's upstream name: ``<namespace>-<service>-<port>``."""
        return f"{self.namespace}-{self.service}-{self.port}"


def locations(ingresses: Sequence[Object]) -> list[Location]:
    """Every rule path of ``ingresses``, oldest Ingress first."""
    found = []
    ordered = sorted(ingresses, key=lambda i: (
        i.get("metadata", {}).get("creationTimestamp") or "",
        i.get("metadata", {}).get("namespace", ""), i.get("metadata", {}).get("name", "")))
    for ingress in ordered:
        for rule in ingress.get("spec", {}).get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                service = (path.get("backend") or {}).get("service") or {}
                port = service.get("port") or {}
                found.append(Location(
                    ingress, str(rule.get("host") or "").lower(), path.get("path") or "/",
                    path.get("pathType") or "ImplementationSpecific", service.get("name", ""),
                    port.get("number", port.get("name", 80))))
    return found


def host_rank(pattern: str, hostname: str) -> int | None:
    """How an Ingress host matches: 0 exact, 1 wildcard, 2 no host (catch-all), None not."""
    if pattern == hostname:
        return 0
    if pattern.startswith("*."):
        head, _, rest = hostname.partition(".")
        return 1 if head and rest == pattern[2:] else None
    return 2 if pattern == "" else None


def path_rank(location: Location, path: str) -> tuple[int, int] | None:
    """How a location's path matches ``path`` (higher wins), or None."""
    if location.path_type == "Exact":
        return (1, len(location.path)) if path == location.path else None
    if location.path_type == "Prefix":
        wanted = [e for e in location.path.split("/") if e]
        return (0, len(location.path)) if [e for e in path.split("/") if e][: len(wanted)] == wanted else None
    return (0, len(location.path)) if path.startswith(location.path) else None


def match(all_locations: Sequence[Location], request: Request) -> Location | None:
    """The location serving ``request`` (server by host, then best path), or None."""
    hostname = request.hostname
    ranks = [(host_rank(loc.host, hostname), loc) for loc in all_locations]
    best_host = min((rank for rank, _ in ranks if rank is not None), default=None)
    if best_host is None:
        return None
    server_host = next(loc.host for rank, loc in ranks if rank == best_host)
    best: tuple[tuple[int, int], Location] | None = None
    for location in all_locations:
        if location.host != server_host:
            continue
        rank = path_rank(location, request.path_only)
        if rank is not None and (best is None or rank > best[0]):
            best = (rank, location)
    return None if best is None else best[1]


@dataclass(frozen=True, slots=True)
class CookieAffinity:
    name: str
    path: str | None
    max_age: str | None
    expires: str | None
    persistent: bool

    @classmethod
    def of(cls, ingress: Object) -> CookieAffinity | None:
        if annotation(ingress, "affinity") != "cookie":
            return None
        return cls(annotation(ingress, "session-cookie-name") or DEFAULT_COOKIE,
                   annotation(ingress, "session-cookie-path"), annotation(ingress, "session-cookie-max-age"),
                   annotation(ingress, "session-cookie-expires"), annotation(ingress, "affinity-mode") == "persistent")


@dataclass(frozen=True, slots=True)
class Backend:
    """One upstream as the balancer sees it: endpoints and how to pick among them."""

    name: str
    location: Location
    endpoints: list[Endpoint]
    affinity: CookieAffinity | None
    hash_by: str | None

    @property
    def key(self) -> str:
        """Identifies the backend in the affinity cookie (ingress-nginx hashes the upstream name)."""
        return hashlib.md5(self.name.encode()).hexdigest()

    def cookie(self, request: Request) -> tuple[str, str] | None:
        """The affinity cookie's (key, backend key), when the request carries one."""
        if self.affinity is None:
            return None
        raw = request.cookie(self.affinity.name)
        if not raw:
            return None
        key, _, backend = raw.partition("|")
        return key, backend

    def affinitized(self, request: Request) -> bool:
        cookie = self.cookie(request)
        return cookie is not None and cookie[1] == self.key


def variable(request: Request, name: str) -> str | bytes:
    """The value of nginx variable ``$name`` for the variables ``upstream-hash-by`` may use."""
    if name == "remote_addr":
        return request.client_ip
    if name == "binary_remote_addr":
        return socket.inet_aton(request.client_ip)
    if name == "request_uri":
        return request.path
    if name.startswith("http_"):
        return request.header(name[5:].replace("_", "-")) or ""
    if name.startswith("cookie_"):
        return request.cookie(name[7:]) or ""
    return ""


def hash_key(template: str, request: Request) -> bytes:
    parts: list[bytes] = []
    last = 0
    for found in _VARIABLE.finditer(template):
        parts.append(template[last:found.start()].encode())
        value = variable(request, found.group(1))
        parts.append(value if isinstance(value, bytes) else value.encode())
        last = found.end()
    parts.append(template[last:].encode())
    return b"".join(parts)


class Nginx:
    """Routes requests by Ingress objects as ingress-nginx does."""

    def __init__(self, registry: PodRegistry, service: Callable[[str, str], Object | None], *,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.time) -> None:
        self._registry = registry
        self._service = service
        self._rng = rng or random.Random()
        self._clock = clock
        self._lock = threading.Lock()
        self._round_robin: dict[str, int] = {}

    def route(self, ingresses: Sequence[Object], request: Request) -> Decision | None:
        """The decision for ``request``, or None when no Ingress host matches it."""
        every = locations(ingresses)
        main = match([loc for loc in every if not is_canary(loc.ingress)], request)
        if main is None:
            return None
        primary = self._backend(main, main.ingress, main.ingress)
        chosen = primary
        canary = next((loc for loc in every if is_canary(loc.ingress) and loc.host == main.host
                       and loc.path == main.path and loc.upstream != main.upstream), None)
        if canary is not None:
            legacy = annotation(canary.ingress, "affinity-canary-behavior") == "legacy"
            alternative = self._backend(canary, canary.ingress, canary.ingress if legacy else main.ingress)
            if self._to_canary(primary, alternative, canary.ingress, request):
                chosen = alternative
        grpc = (annotation(main.ingress, "backend-protocol") or "HTTP").upper() in ("GRPC", "GRPCS")
        if not chosen.endpoints:
            return Decision("ingress-nginx", status=503, grpc=grpc)
        picked, set_cookie = self._balance(chosen, request)
        rest = [e for e in self._rotation(chosen) if e is not picked]
        headers = [("Set-Cookie", set_cookie)] if set_cookie else []
        return Decision("ingress-nginx", [picked, *rest], response_headers=headers, grpc=grpc)

    def _backend(self, location: Location, own: Object, affinity_from: Object) -> Backend:
        found: list[Endpoint] = []
        service = self._service(location.namespace, location.service)
        if service is not None:
            port = location.port
            entry = (service_port(service, number=port) if isinstance(port, int)
                     else service_port(service, name=port))
            if entry is not None:
                found = endpoints(self._registry, service, entry)
        return Backend(location.upstream, location, found, CookieAffinity.of(affinity_from),
                       annotation(own, "upstream-hash-by"))

    def _to_canary(self, primary: Backend, alternative: Backend, canary: Object, request: Request) -> bool:
        # balancer.lua: affinity first, then header, cookie, weight.
        if primary.affinitized(request):
            return False
        if alternative.affinitized(request):
            return True
        header_name = annotation(canary, "canary-by-header")
        header = request.header(header_name) if header_name else None
        if header is not None:
            wanted = annotation(canary, "canary-by-header-value")
            pattern = annotation(canary, "canary-by-header-pattern")
            if wanted:
                if header == wanted:
                    return True
            elif pattern:
                if re.search(pattern, header):
                    return True
            elif header in ("always", "never"):
                return header == "always"
        cookie_name = annotation(canary, "canary-by-cookie")
        cookie = request.cookie(cookie_name) if cookie_name else None
        if cookie in ("always", "never"):
            return cookie == "always"
        weight = int(annotation(canary, "canary-weight") or 0)
        total = max(100, int(annotation(canary, "canary-weight-total") or 100))
        return self._rng.randint(1, total) <= weight

    def _rotation(self, backend: Backend) -> list[Endpoint]:
        """The endpoints in round-robin order from this request's turn."""
        ordered = sorted(backend.endpoints, key=lambda e: e.address)
        with self._lock:
            turn = self._round_robin.get(backend.name, self._rng.randrange(len(ordered)))
            self._round_robin[backend.name] = turn + 1
        turn %= len(ordered)
        return ordered[turn:] + ordered[:turn]

    def _balance(self, backend: Backend, request: Request) -> tuple[Endpoint, str | None]:
        by_address = {e.address: e for e in backend.endpoints}
        if backend.affinity is not None:
            return self._sticky(backend, backend.affinity, by_address, request)
        if backend.hash_by:
            address = hashring.find(list(by_address), hash_key(backend.hash_by, request))
            return by_address[address or ""], None
        return self._rotation(backend)[0], None

    def _sticky(self, backend: Backend, affinity: CookieAffinity, by_address: dict[str, Endpoint],
                request: Request) -> tuple[Endpoint, str | None]:
        cookie = backend.cookie(request)
        if affinity.persistent:
            names = {self._persistent_key(backend, a): a for a in by_address}
            if cookie is not None and cookie[0] in names:
                return by_address[names[cookie[0]]], None
            address = self._rng.choice(sorted(by_address))
            return by_address[address], self._set_cookie(backend, affinity, self._persistent_key(backend, address))
        if cookie is not None and cookie[0]:
            return by_address[hashring.find(list(by_address), cookie[0]) or ""], None
        key = f"{self._clock():.3f}.{self._rng.randrange(1_000_000)}"
        return by_address[hashring.find(list(by_address), key) or ""], self._set_cookie(backend, affinity, key)

    @staticmethod
    def _persistent_key(backend: Backend, address: str) -> str:
        # persistent mode names the endpoint itself, salted with the upstream name
        return hashlib.md5((backend.name + address).encode()).hexdigest()

    def _set_cookie(self, backend: Backend, affinity: CookieAffinity, key: str) -> str:
        parts = [f"{affinity.name}={key}|{backend.key}", f"Path={affinity.path or backend.location.path}"]
        if affinity.expires:
            parts.append("Expires=" + email.utils.formatdate(self._clock() + int(affinity.expires), usegmt=True))
        if affinity.max_age:
            parts.append(f"Max-Age={int(affinity.max_age)}")
        parts.append("HttpOnly")
        return "; ".join(parts)
