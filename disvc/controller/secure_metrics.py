"""``/metrics`` over HTTPS, for callers the Kubernetes API vouches for.

``--metrics-secure`` serves the same exposition as the plain endpoint
(``metrics.serve``), with two differences: every connection is TLS, with the
certificate ``tls.CertificateSource`` picks (a mounted Secret, reloaded when
it changes, else a self-signed one), and every request must carry a bearer
token that ``metrics_auth.MetricsAuth`` accepts for ``get`` on ``/metrics``.
Refusals carry a status and no body, so nothing about the controller or its
DISVCs leaks to a caller that may not read them.

The TLS handshake runs on the request's own thread, not in the accept loop:
a client that connects and stalls holds up only itself. The health probes
are a separate plain-HTTP server (``health.py``): the kubelet sends no token.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app

from disvc.controller.metrics import MetricsServer
from disvc.controller.metrics_auth import MetricsAuth
from disvc.controller.options import BindAddress
from disvc.controller.tls import CertificateSource

log = structlog.get_logger(__name__)

METRICS_PATH: Final = "/metrics"
CONNECTION_TIMEOUT: Final = 30.0
"""Seconds a connection may stay silent (handshake included) before it is dropped."""

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def guarded(app: WsgiApp, auth: MetricsAuth) -> WsgiApp:
    """``app`` behind ``auth``: a refused request gets a bare status line, no body."""

    def guarded_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        verb = str(environ.get("REQUEST_METHOD", "GET")).lower()
        status = auth.check(environ.get("HTTP_AUTHORIZATION"), verb, path)
        if status == HTTPStatus.OK and path.rstrip("/") != METRICS_PATH:
            status = HTTPStatus.NOT_FOUND
        if status != HTTPStatus.OK:
            start_response(f"{status.value} {status.phrase}", [("Content-Length", "0")])
            return []
        return app(environ, start_response)

    return guarded_app


class _QuietHandler(WSGIRequestHandler):
    timeout = CONNECTION_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        # Prometheus scrapes every few seconds; access lines would bury the real log.
        pass


class _TlsWsgiServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    certificates: CertificateSource

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        # Ask for the context per connection: a renewed certificate is served
        # from the next connection on.
        wrapped = self.certificates.context().wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        assert isinstance(request, ssl.SSLSocket)
        request.settimeout(CONNECTION_TIMEOUT)
        request.do_handshake()
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed handshakes (a plain-HTTP client, a scraper that rejects the
        # certificate) are the client's problem; keep them out of the error log.
        log.debug("Metrics connection failed", client=str(client_address[0]) if client_address else None)


class _TlsWsgiServer6(_TlsWsgiServer):
    address_family = socket.AF_INET6


def serve_secure(
    address: BindAddress, registry: CollectorRegistry, auth: MetricsAuth, certificates: CertificateSource
) -> MetricsServer:
    """Serve ``registry`` at ``https://<address>/metrics`` behind ``auth``, in a daemon thread."""
    host = address.host or "0.0.0.0"
    certificates.context()  # load or make the certificate now, so a problem shows at start
    server_class = _TlsWsgiServer6 if ":" in host else _TlsWsgiServer
    httpd = server_class((host, address.port), _QuietHandler)
    httpd.certificates = certificates
    httpd.set_app(guarded(make_wsgi_app(registry), auth))
    threading.Thread(target=httpd.serve_forever, name="metrics-https", daemon=True).start()
    return MetricsServer(host=host, port=int(httpd.server_port), _httpd=httpd)
