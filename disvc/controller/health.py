"""Liveness and readiness probes over HTTP, for the kubelet.

``/healthz`` answers 200 while the process can answer at all (and its
``is_alive`` check holds); ``/readyz`` answers 200 only once ``is_ready``
holds, which the manager wires to "every informer has synced", and 503 before.
The same split as controller-runtime's ``healthz`` handlers: a pod that has
not filled its caches yet is alive but must not be counted as serving.

A stdlib ``ThreadingHTTPServer`` in a daemon thread is enough: probes are
rare, tiny and must not depend on the reconcile machinery they report on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from disvc.controller.options import BindAddress

Check = Callable[[], bool]


class _ProbeServer(ThreadingHTTPServer):
    daemon_threads = True
    is_alive: Check
    is_ready: Check


class _ProbeHandler(BaseHTTPRequestHandler):
    server: _ProbeServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/healthz", "/livez"):
            self._answer(self.server.is_alive())
        elif path == "/readyz":
            self._answer(self.server.is_ready())
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n")

    def _answer(self, healthy: bool) -> None:
        if healthy:
            self._send(HTTPStatus.OK, b"ok\n")
        else:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"not ready\n")

    def _send(self, status: HTTPStatus, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # The kubelet probes every few seconds; access lines would bury the real log.
        pass


class HealthServer:
    """Serves ``/healthz`` and ``/readyz`` on ``address`` until ``stop``."""

    def __init__(self, address: BindAddress, is_ready: Check, is_alive: Check = lambda: True) -> None:
        self._server = _ProbeServer((address.host, address.port), _ProbeHandler)
        self._server.is_alive = is_alive
        self._server.is_ready = is_ready
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-probes", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful when the address asked for port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stop serving; True once the serving thread has ended (within ``timeout``)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()
        return not self._thread.is_alive()
