"""How a request/response call reaches the API server: kept-alive HTTP/1.1 connections.

Why not urllib3 for these calls: converging 5000 DISVCs sends about 36,000
requests, and urllib3 over ``http.client`` spends about 700 µs of CPU on each
one (building the request, parsing headers with ``email.feedparser``, its
response wrapper), against under 200 µs for the same call made here. On a
2-core machine that CPU is taken from the API server (hack/bench/README.md,
"Where the time went"). What this module needs of HTTP is small: the API
server answers every call but a watch with one JSON body, sized by
``Content-Length`` or chunked, on a connection it keeps open.

``Connections`` keeps a pool of idle connections to one server. Each call
takes one (or opens one: TCP, then TLS with the kubeconfig's CA, client
certificate and server name), writes the request, reads the whole response
and puts the connection back unless the server asked to close it. A
connection the server closed while it sat idle is noticed before reuse; a
reused one that fails before any byte of the answer came back is replaced
and the request sent once more (the server never read it).

Watches stream for minutes and stay on urllib3 (``api.Kube.watch``), as do
all calls when the kubeconfig names a proxy (``ProxiedConnections``).
"""

from __future__ import annotations

import io
import select
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO, Final, Protocol
from urllib.parse import urlsplit

import urllib3
from kubernetes import client as k8s_client

MAX_IDLE: Final = 32
"""Idle connections kept per server: the workers, the recorder and the
leader elector each hold at most one at a time."""
READ_BUFFER: Final = 65536
_NO_BODY_STATUSES: Final = frozenset({204, 304})


class ProtocolError(OSError):
    """The server's answer was not HTTP/1.1 as expected (a transport failure, retried)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes


class Transport(Protocol):
    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None,
        timeout: tuple[float, float],
    ) -> Response:
        """Send one request (``target`` is the path and query) and read the whole answer."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """What ``ssl`` needs from the kubeconfig (``kubernetes.client.Configuration``)."""

    verify: bool = True
    ca_file: str | None = None
    ca_data: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_hostname: str | None = None
    check_hostname: bool = True

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif not self.check_hostname:
            context.check_hostname = False
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


class _Connection:
    """One socket and its buffered reader; used by one thread at a time."""

    __slots__ = ("reader", "reused", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = io.BufferedReader(socket.SocketIO(sock, "rb"), READ_BUFFER)
        self.reused = False

    def is_dropped(self) -> bool:
        """True when the idle connection has something to read: the server closed
        it (EOF) or broke protocol. Either way it cannot carry a request."""
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class Connections:
    """Kept-alive HTTP/1.1 connections to one API server; thread-safe."""

    def __init__(self, url: str, tls: TlsSettings | None = None, max_idle: int = MAX_IDLE) -> None:
        parts = urlsplit(url)
        self._secure = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._secure else 80)
        self._host_header = parts.netloc.rpartition("@")[2]
        tls = tls or TlsSettings()
        self._context = tls.context() if self._secure else None
        self._server_hostname = tls.server_hostname or self._host
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle

    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None,
        timeout: tuple[float, float],
    ) -> Response:
        head = self._head(method, target, headers, body)
        while True:
            conn = self._take(timeout[0])
            try:
                conn.sock.settimeout(timeout[1])
                try:
                    conn.sock.sendall(head + body if body else head)
                    status_line = _status_line(conn.reader)
                except (ConnectionError, _ClosedBeforeAnswer) as exc:
                    if not conn.reused:
                        raise ProtocolError(f"connection closed before an answer: {exc}") from exc
                    # No byte of an answer: the server closed this kept
                    # connection while it was idle and never read the request.
                    conn.close()
                    continue
                response, keep = _read_response(conn.reader, status_line, method)
            except BaseException:
                conn.close()
                raise
            if keep:
                self._give_back(conn)
            else:
                conn.close()
            return response

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _head(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body) if body else 0}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _take(self, connect_timeout: float) -> _Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._open(connect_timeout)
            if conn.is_dropped():
                conn.close()
                continue
            conn.reused = True
            return conn

    def _open(self, connect_timeout: float) -> _Connection:
        sock = socket.create_connection((self._host, self._port), timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _give_back(self, conn: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()


class _ClosedBeforeAnswer(Exception):
    pass


def _status_line(reader: BinaryIO) -> bytes:
    line = reader.readline(65537)
    if not line:
        raise _ClosedBeforeAnswer("EOF")
    return line


def _read_response(reader: BinaryIO, status_line: bytes, method: str) -> tuple[Response, bool]:
    """The whole response whose status line was read, and whether the
    connection may carry another request."""
    while True:
        version, _, rest = status_line.partition(b" ")
        if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        while True:
            line = reader.readline(65537)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ProtocolError("connection closed inside the response headers")
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if status >= 200 or status == 101:
            break
        status_line = reader.readline(65537)  # 1xx answers (100 Continue) precede the real one
    keep = version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if method == "HEAD" or status in _NO_BODY_STATUSES:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(reader)
    elif "content-length" in headers:
        length = _number(headers["content-length"], 10)
        body = reader.read(length)
        if len(body) != length:
            raise ProtocolError(f"body cut short: {len(body)} of {length} bytes")
    else:
        body, keep = reader.read(), False  # delimited by the server closing the connection
    return Response(status, headers, body), keep


def _read_chunked(reader: BinaryIO) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = reader.readline(65537)
        if not size_line:
            raise ProtocolError("connection closed inside a chunked body")
        size = _number(size_line.split(b";", 1)[0].decode("latin-1"), 16)
        if size == 0:
            while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers: none that matter here
            return b"".join(parts)
        chunk = reader.read(size + 2)
        if len(chunk) != size + 2:
            raise ProtocolError("connection closed inside a chunk")
        parts.append(chunk[:size])


def _number(text: str, base: int) -> int:
    try:
        return int(text.strip(), base)
    except ValueError:
        raise ProtocolError(f"not a length: {text[:40]!r}") from None


class ProxiedConnections:
    """Every call through urllib3's pool: for kubeconfigs that name a proxy
    (HTTP CONNECT or SOCKS), which ``Connections`` does not speak."""

    def __init__(self, url: str, pool: urllib3.PoolManager) -> None:
        self._url = url.rstrip("/")
        self._pool = pool

    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None,
        timeout: tuple[float, float],
    ) -> Response:
        raw = self._pool.urlopen(
            method, self._url + target, body=body, headers=dict(headers), redirect=False, retries=False,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
        )
        return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw.data)

    def close(self) -> None:
        pass  # the pool belongs to the ApiClient


def from_api_client(api_client: k8s_client.ApiClient) -> Transport:
    """Kept-alive connections with the client's TLS settings; urllib3 when it goes through a proxy."""
    configuration = api_client.configuration
    host = str(configuration.host)
    pool = api_client.rest_client.pool_manager
    # The client made a ProxyManager or SOCKSProxyManager: the kubeconfig names a proxy.
    if type(pool) is not urllib3.PoolManager:
        return ProxiedConnections(host, pool)
    assert_hostname = getattr(configuration, "assert_hostname", None)
    tls = TlsSettings(
        verify=bool(configuration.verify_ssl),
        ca_file=configuration.ssl_ca_cert,
        ca_data=getattr(configuration, "ca_cert_data", None),
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        server_hostname=getattr(configuration, "tls_server_name", None)
        or (assert_hostname if isinstance(assert_hostname, str) else None),
        check_hostname=assert_hostname is not False,
    )
    return Connections(host, tls)
