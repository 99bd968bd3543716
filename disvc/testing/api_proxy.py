"""A TLS proxy on loopback in front of any API server, to put the client
under test behind what sits between real clients and real servers: an
overloaded server (a share of requests answered ``429 Too Many Requests``)
and a path-prefixing proxy (the API under ``https://host/k8s/clusters/c-x``,
as Rancher and other cluster proxies give it).

When API Priority and Fairness cannot seat or queue a request, kube-apiserver
rejects it with 429 and a ``Retry-After`` header in whole seconds (the
Kubernetes documentation, "API Priority and Fairness"). A test cluster is
never that busy, and the loopback API's fault rules (``apiserver.faults``)
exist on the loopback API only; this proxy brings the same answers to any
API server, loopback or kube-apiserver alike.

With ``throttle_every=n``, every n-th request that is a GET, POST, PUT or
PATCH and not a watch is answered here: 429, ``Retry-After: <retry_after>`` and a ``Status`` body
(reason ``TooManyRequests``, ``details.retryAfterSeconds``). One counter
spans all connections, so which requests are refused is deterministic for a
given order of requests, never random. Everything else, watches included,
goes to the upstream server with the upstream kubeconfig's own credentials;
answers are relayed as they arrive (a watch's events stream through).

With ``path_prefix``, the proxy serves only below that path (anything else:
404, counted in ``strays``) and takes the prefix off before relaying.

The proxy serves a certificate from a CA of its own (``envtest.generate_pki``,
the ``openssl`` CLI) and writes a kubeconfig naming itself for the client
under test (``kubeconfig``).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

import yaml
from kubernetes import client, config

from disvc.testing.envtest import generate_pki
from disvc.testing.running import Running

THROTTLED_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH"})

HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
"""Headers that belong to one connection (RFC 9110 §7.6.1), never relayed."""

NOT_RELAYED: Final = HOP_BY_HOP | {"host", "authorization", "content-length", "date", "server"}
"""Also set anew on each hop: the target, our credentials, the length, the
date and server this hop's own HTTP server writes."""

UPSTREAM_TIMEOUT: Final = 900.0
"""Longer than any watch the API server keeps open (its timeouts are minutes)."""


def is_watch(path: str) -> bool:
    """A watch request: ``?watch=true`` (or ``1``) or the old ``/watch/`` paths."""
    parts = urlsplit(path)
    return parse_qs(parts.query).get("watch", [""])[0] in ("true", "1") or "/watch/" in parts.path


def too_many_requests_status(retry_after: int) -> dict[str, object]:
    """The ``Status`` of a 429 as the API machinery builds it for TooManyRequests."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Too many requests, please try again later.",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": retry_after},
        "code": 429,
    }


@dataclass(frozen=True, slots=True)
class Refusal:
    """One request the proxy answered 429 itself."""

    method: str
    path: str


@dataclass(frozen=True, slots=True)
class _Upstream:
    scheme: str
    host: str
    port: int
    context: ssl.SSLContext | None
    authorization: str | None
    token: str | None

    def connect(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=UPSTREAM_TIMEOUT, context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=UPSTREAM_TIMEOUT)


def _upstream(kubeconfig: str) -> _Upstream:
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration, persist_config=False
    )
    parts = urlsplit(configuration.host)
    context = None
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
    # Where the client's own requests take the kubeconfig's token from.
    setting = configuration.auth_settings().get("BearerToken")
    value = setting.get("value") if setting else None
    authorization = str(value).strip() if value else None
    token = authorization.removeprefix("Bearer ") if authorization and authorization.startswith("Bearer ") else None
    default_port = 443 if parts.scheme == "https" else 80
    return _Upstream(parts.scheme, parts.hostname or "127.0.0.1", parts.port or default_port,
                     context, authorization, token)


class ApiProxy(Running):
    """The proxy; ``start`` makes its certificates, binds a loopback port and serves."""

    def __init__(
        self, upstream_kubeconfig: str, directory: Path, *,
        throttle_every: int | None = None, retry_after: int = 3, path_prefix: str = "",
    ) -> None:
        if throttle_every is not None and throttle_every < 1:
            raise ValueError("throttle_every must be at least 1 (or None: never)")
        if path_prefix and (not path_prefix.startswith("/") or path_prefix.endswith("/")):
            raise ValueError(f"path_prefix must start with '/' and not end with one: {path_prefix!r}")
        self._upstream_kubeconfig = upstream_kubeconfig
        self._directory = directory
        self.throttle_every = throttle_every
        self.retry_after = retry_after
        self.path_prefix = path_prefix
        self.kubeconfig = str(directory / "kubeconfig")
        """A kubeconfig naming the proxy, for the client under test (written by ``start``)."""
        self._lock = threading.Lock()
        self._counted = 0
        self._refused: list[Refusal] = []
        self._forwarded = 0
        self._strays: list[str] = []
        self._open: set[http.client.HTTPConnection] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- what a test reads (any thread) -----------------------------------------

    @property
    def refused(self) -> list[Refusal]:
        """Every request answered 429 so far."""
        with self._lock:
            return list(self._refused)

    @property
    def strays(self) -> list[str]:
        """Paths asked for outside ``path_prefix`` (answered 404)."""
        with self._lock:
            return list(self._strays)

    @property
    def forwarded(self) -> int:
        """Requests relayed to the upstream server so far."""
        with self._lock:
            return self._forwarded

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> ApiProxy:
        upstream = _upstream(self._upstream_kubeconfig)
        pki = generate_pki(self._directory / "pki")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.serving_cert, pki.serving_key)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy, server.upstream = self, upstream
        # The handshake runs on the connection's own thread (_Handler.setup),
        # so one slow client cannot hold up the accept loop.
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        port = server.server_address[1]
        user = {"token": upstream.token} if upstream.token else {}
        name = "api-proxy"
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {
                "server": f"https://127.0.0.1:{port}{self.path_prefix}", "certificate-authority": str(pki.ca_cert),
            }}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        }  # fmt: skip
        Path(self.kubeconfig).write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
        self._thread = threading.Thread(target=server.serve_forever, name="api-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            still_open = list(self._open)
        for connection in still_open:  # watches blocked reading upstream
            if connection.sock is not None:
                try:
                    connection.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(10)
        self._server = None

    # -- used by the handler --------------------------------------------------------

    def _unprefixed(self, path: str) -> str | None:
        """``path`` without the prefix; None (and counted) when outside it."""
        if not self.path_prefix:
            return path
        rest = path.removeprefix(self.path_prefix)
        if rest != path and rest.startswith(("/", "?")):
            return rest
        with self._lock:
            self._strays.append(path)
        return None

    def _refuses(self, method: str, path: str) -> bool:
        if method not in THROTTLED_METHODS or is_watch(path):
            return False
        with self._lock:
            self._counted += 1
            refuse = self.throttle_every is not None and self._counted % self.throttle_every == 0
            if refuse:
                self._refused.append(Refusal(method, path))
            else:
                self._forwarded += 1
            return refuse

    def _count_forwarded(self) -> None:
        with self._lock:
            self._forwarded += 1

    def _opened(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._open.add(connection)

    def _closed(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        with self._lock:
            self._open.discard(connection)


class _Server(ThreadingHTTPServer):
    proxy: ApiProxy
    upstream: _Upstream


class _Handler(BaseHTTPRequestHandler):
    """One client connection, kept alive across requests, with one upstream
    connection of its own (so answers never cross between clients)."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self._connection: http.client.HTTPConnection | None = None
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def finish(self) -> None:
        if self._connection is not None:
            self.server.proxy._closed(self._connection)
            self._connection = None
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # no access log on stderr between test results

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        proxy = self.server.proxy
        path = proxy._unprefixed(self.path)
        if path is None:
            data = b"404 page not found\n"  # as a Go HTTP mux answers a path it has no route for
            self.send_response(404, "Not Found")
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if proxy._refuses(self.command, path):
            self._answer_too_many_requests(proxy.retry_after)
            return
        if self.command not in THROTTLED_METHODS or is_watch(path):
            proxy._count_forwarded()
        self._forward(path, body)

    def _answer_too_many_requests(self, retry_after: int) -> None:
        data = json.dumps(too_many_requests_status(retry_after)).encode()
        self.send_response(429, "Too Many Requests")
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self, path: str, body: bytes | None) -> None:
        upstream = self.server.upstream
        headers = {k: v for k, v in self.headers.items() if k.lower() not in NOT_RELAYED}
        if upstream.authorization:
            headers["Authorization"] = upstream.authorization
        if body is not None:
            headers["Content-Length"] = str(len(body))
        try:
            if self._connection is None:
                self._connection = upstream.connect()
                self.server.proxy._opened(self._connection)
            self._connection.request(self.command, path, body=body, headers=headers)
            response = self._connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self._drop_upstream()
            self.send_error(502, f"upstream: {type(exc).__name__}")
            return
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in NOT_RELAYED:
                self.send_header(name, value)
        length = response.getheader("Content-Length")
        try:
            if length is not None:
                data = response.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            # No length (a watch, a large list): relay each piece as it arrives.
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := response.read1(65536):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, http.client.HTTPException):
            # Either side broke mid-answer: neither connection is in step any more.
            self._drop_upstream()
            self.close_connection = True

    def _drop_upstream(self) -> None:
        if self._connection is not None:
            self.server.proxy._closed(self._connection)
            self._connection = None
