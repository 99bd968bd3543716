"""What a router knows about one request when it picks an endpoint.

Routers decide on the client's address (the connection's source, as
kube-proxy and ingress-nginx's ``$remote_addr`` see it), the ``Host`` (or
h2's ``:authority``), the path and the headers, cookies included. The
outcome is a :class:`Decision`: endpoints to try in order, or the status
code the router answers itself, plus the headers the affinity needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie

from disvc.testing.dataplane.router.kubeproxy import Endpoint


@dataclass(frozen=True, slots=True)
class Request:
    client_ip: str
    host: str
    """``Host`` or ``:authority`` as sent, port included."""
    path: str = "/"
    """The request target: path and query."""
    headers: tuple[tuple[str, str], ...] = ()
    """Names in lower case, as h11 and hpack give them."""

    @property
    def hostname(self) -> str:
        """The host without its port, lower case (what Ingress and HTTPRoute hosts name)."""
        host = self.host.strip().lower()
        if host.startswith("["):
            return host.split("]", 1)[0] + "]"
        return host.rsplit(":", 1)[0] if ":" in host else host

    @property
    def path_only(self) -> str:
        return self.path.split("?", 1)[0] or "/"

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), as nginx's ``$http_name``."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    def cookie(self, name: str) -> str | None:
        """The value of cookie ``name`` over every ``Cookie`` header, as ``$cookie_name``."""
        for key, value in self.headers:
            if key != "cookie":
                continue
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value)
            except CookieError:
                continue
            if name in jar:
                return jar[name].value
        return None


@dataclass(slots=True)
class Decision:
    """Where one request goes, or the status the router answers itself."""

    router: str
    """Which router decided: ``kube-proxy``, ``ingress-nginx`` or ``gateway``."""
    endpoints: list[Endpoint] = field(default_factory=list)
    """The pick first, then the endpoints a connect failure may fall back to."""
    status: int | None = None
    """Set when no endpoint is tried: 404 unknown host, 503 none Ready, 500 bad backend."""
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    """Added to the response: the affinity's ``Set-Cookie`` or session header."""
    grpc: bool = False
    """The route asks for gRPC (ingress-nginx ``backend-protocol: GRPC``, a GRPCRoute)."""
    per_connection: bool = False
    """kube-proxy balances connections: later requests on the connection keep the pick."""
