"""How every call reaches the API server: a small pool of HTTP/1.1 connections
whose answers are parsed by llhttp (through ``httptools``).

Why a pool of our own and not urllib3: converging 5000 DISVCs sends about
36,000 requests, and urllib3 over ``http.client`` spends several times the
CPU per request that this pool does (figures in hack/bench/README.md, "The
HTTP stack"); on a 2-core machine that CPU is taken from the API server. Why
llhttp under it: parsing HTTP is where a hand-written client goes wrong
(bytes past a response's framing, unbounded or folded header lines,
``Connection`` token lists, conflicting lengths); llhttp is Node.js's
parser, strict by default, and ``httptools`` (MagicStack's binding, the one
uvicorn uses) feeds it from Python at about a twentieth of h11's CPU per
answer. Requests are simple to write and are written here: a method, a
target and header fields, each checked before a byte is sent (no CR, LF or
other control character in a value, a token for a name; a bad one is
refused as ``ValueError``).

``Connections`` serves one API server, with the path prefix of its URL
(``https://host/k8s/clusters/c-x``, as Rancher gives) put before every
request's path. A call takes an idle connection (or opens one: TCP, an HTTP
CONNECT tunnel when the kubeconfig names a proxy, then TLS), sends the
request and reads the answer. ``request`` reads it whole; ``stream`` hands a
watch's body out as it arrives. A connection goes back to the pool only when
the answer ended by its framing, the server did not ask to close, and
nothing came past the answer.

What is resent, and what is not: a request is sent again, once, only when
the connection it went out on was a reused one that closed before any byte
of an answer came back *and* the method is GET (reads change nothing). Any
other method raises ``MaybeSentError`` instead: the server may have acted on
it, and only a fresh read can tell (``api.Kube`` maps it to
``errors.UnknownOutcomeError``, which is never retried in-call). Failures
before any byte was written (connect, TLS handshake, proxy) raise
``NotSentError``, safe to retry for every method.

Every connection asks the kernel for TCP keepalive probes (``keep_alive``),
so a peer that vanished without a word (a node gone, a NAT entry dropped)
ends a silent read in an error instead of leaving it waiting. Probes prove
only that *something* holds the connection's other end: a proxy or load
balancer that keeps it up but forwards nothing answers them; for a watch,
the reflector's idle limit covers that case.

Certificate files (CA, client certificate and key) are checked for changes
on every new connection and every few seconds otherwise; after a rotation on
disk the TLS context is rebuilt and idle connections made with the old one
are dropped, as client-go's certificate rotation does.
"""

from __future__ import annotations

import base64
import os
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import unquote, urlsplit

import httptools

MAX_IDLE: Final = 32
"""Idle connections kept per server: the workers, the recorder and the
leader elector each hold at most one at a time; watches hold theirs."""
READ_BUFFER: Final = 65536
MAX_HEADERS_SIZE: Final = 32 * 1024
"""Bound on a response's status line and headers while incomplete (more is
refused): a head can exceed it only by what one read brings."""
CERT_RECHECK_SECONDS: Final = 5.0
"""How often, at most, the certificate files are checked for a rotation."""
RESENDABLE_METHODS: Final = frozenset({"GET"})
"""Methods sent again on a fresh connection when a reused one closed first.
PUT, PATCH and DELETE are idempotent in HTTP's terms but not in the API's:
a resent Lease update fails with 409, a resent delete with 404."""
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
"""Methods whose requests always carry a ``Content-Length``, 0 when empty."""
KEEPALIVE_IDLE: Final = 30
"""Seconds a connection may carry nothing before the kernel probes the peer."""
KEEPALIVE_INTERVAL: Final = 10
"""Seconds between unanswered probes."""
KEEPALIVE_COUNT: Final = 3
"""Unanswered probes after which the kernel gives the connection up: a
vanished peer is noticed about a minute (30 s + 3 x 10 s) after the last
byte. Without keepalive nothing is ever probed; with Linux's default
timings the first probe would wait two hours."""

_TOKEN: Final = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
"""A method or a header name (RFC 9110 ``token``)."""
_BAD_VALUE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$")
"""What a header value may not hold: control characters (CR and LF among
them; a tab is allowed) and whitespace at either end."""
_TARGET: Final = re.compile(r"[\x21-\x7e]+")
"""A request target: visible ASCII, no space (a query is percent-encoded)."""


class NotSentError(OSError):
    """No byte of the request left this process (connect, proxy or TLS failed)."""


class UntrustedServerError(NotSentError):
    """The server's certificate did not verify against the CA in use. Either a
    setup mistake (a wrong CA) or a rotation half done (the server serves the
    new certificate, the CA file is still the old one); the file is read
    again on the next connection, so this is retried like any unsent request.
    Not ``ssl.SSLCertVerificationError`` itself: that is also a
    ``ValueError``, which callers take for a request refused as malformed."""


class MaybeSentError(OSError):
    """The request may have reached the server, and no answer came back."""


class ProtocolError(OSError):
    """The server's answer was not HTTP/1.1 as expected."""


class ClosedError(ProtocolError):
    """The server closed the connection before its answer was complete."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes
    sends: int = 1
    """How many times the request went out: 2 when a reused connection had
    closed under a read, which was then sent again on a new one."""


class Stream:
    """An answer whose body is read as it arrives (a watch); owns its connection
    until ``close``, which any thread may call to end a blocked read."""

    def __init__(
        self, pool: Connections, conn: _Connection, status: int, headers: Mapping[str, str], sends: int,
    ) -> None:
        self.status = status
        self.headers = headers
        self.sends = sends
        self._pool = pool
        self._conn: _Connection | None = conn
        self._lock = threading.Lock()

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes as the server sends them; ends with the body."""
        while True:
            conn = self._conn
            if conn is None:
                return
            if conn.body:
                data = b"".join(conn.body)
                conn.body.clear()
                yield data
            elif conn.complete:
                self._finish(reusable=True)
                return
            else:
                try:
                    conn.receive()
                except TimeoutError:
                    self._pool.drop_idle()
                    raise

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def close(self) -> None:
        """Give the connection up; a read blocked on it in another thread returns."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.shutdown()
            conn.close()

    def _finish(self, reusable: bool) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.give_back(conn) if reusable else conn.close()


class Transport(Protocol):
    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None,
        timeout: tuple[float, float],
    ) -> Response:
        """Send one request (``target`` is the path and query) and read the whole answer."""
        ...

    def stream(self, method: str, target: str, headers: Mapping[str, str], timeout: tuple[float, float]) -> Stream:
        """Send a bodiless request; the answer's head, its body left to read."""
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

    def files_state(self) -> tuple[tuple[int, int, int], ...]:
        """What changes when a certificate file is rewritten or replaced (a
        Secret volume swaps a symlink): inode, size, modification time."""
        state = []
        for path in (self.ca_file, self.cert_file, self.key_file):
            try:
                info = os.stat(path) if path else None
            except OSError:
                info = None
            state.append((info.st_ino, info.st_size, info.st_mtime_ns) if info else (0, 0, 0))
        return tuple(state)


def request_head(method: str, target: str, fields: Iterable[tuple[str, str]], content_length: int | None = None) -> bytes:
    """An HTTP/1.1 request head; ``ValueError`` (nothing sent) when the method,
    target, a header name or a header value could not be sent as given."""
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target):
        raise ValueError(f"refused to send a malformed request: {method!r} {target!r}")
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    for field in fields:
        line = _checked_lines.get(field)
        if line is None:
            line = _header_line(*field)
            if len(_checked_lines) < CHECKED_LINES:
                _checked_lines[field] = line
        lines.append(line)
    if content_length is not None:
        lines.append(f"Content-Length: {content_length:d}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("ascii")


CHECKED_LINES: Final = 64
"""Header fields remembered as checked: a controller sends the same few
(Host, Accept, User-Agent, Content-Type, its token) on every request."""
_checked_lines: dict[tuple[str, str], str] = {}


def _header_line(name: str, value: str) -> str:
    """``name: value`` and its line end, once checked: a token for the name,
    ASCII without control characters or edge whitespace for the value."""
    if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value) or not value.isascii():
        raise ValueError(f"refused to send a malformed request: header {name!r}")
    return f"{name}: {value}\r\n"


class _Answer:
    """The answer being read on one connection, as llhttp's callbacks give it.
    ``httptools`` calls the ``on_*`` methods from ``feed_data``."""

    __slots__ = (
        "body", "complete", "extra", "head_done", "head_size", "headers", "keep_alive", "parser", "status",
        "until_close",
    )

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.reset()

    def reset(self) -> None:
        """Ready for the next answer (the parser, after a clean one, is at a message's start)."""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.head_done = False
        self.head_size = 0
        self.complete = False
        self.keep_alive = False
        self.until_close = False
        self.extra = False

    def feed(self, data: bytes) -> None:
        """Parse bytes the server sent; ``ProtocolError`` when they are not a
        well-formed answer."""
        parser = self.parser
        if parser is None:
            raise ProtocolError("connection already closed")
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            raise ProtocolError("the server switched protocols") from exc
        except httptools.HttpParserError as exc:
            if not self.complete:
                raise ProtocolError(f"malformed answer: {exc}") from exc
            self.extra = True  # garbage past a complete answer: the answer stands, the connection goes
        if not self.head_done:
            self.head_size += len(data)
            if self.head_size > MAX_HEADERS_SIZE:
                raise ProtocolError(f"answer's head longer than {MAX_HEADERS_SIZE} bytes")

    def end_of_stream(self) -> None:
        """The server closed the connection: the end of a body framed by it,
        else an answer cut short."""
        if self.complete:
            return
        if self.head_done and self.until_close:
            self.complete = True
            return
        raise ClosedError("connection closed before the answer was complete")

    # httptools' callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True  # a second answer nobody asked for

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.complete:
            self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.complete or self.parser is None:
            return
        status = self.parser.get_status_code()
        if status < 200:
            self.headers = {}  # an interim answer (100 Continue): the real one follows
            return
        self.status = status
        self.head_done = True
        framing = self.headers.get("transfer-encoding", "").lower()
        self.until_close = "content-length" not in self.headers and "chunked" not in framing

    def on_body(self, data: bytes) -> None:
        if not self.complete:
            self.body.append(data)

    def on_message_complete(self) -> None:
        if self.complete or not self.head_done or self.parser is None:
            return  # past the answer, or the end of an interim one
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()


class _Connection:
    """One socket and the answer being read on it; used by one thread at a time."""

    __slots__ = ("answer", "generation", "received", "reused", "sock")

    def __init__(self, sock: socket.socket, generation: int) -> None:
        self.sock = sock
        self.answer = _Answer()
        self.reused = False
        self.received = False
        """Whether any byte of the current answer arrived."""
        self.generation = generation

    @property
    def body(self) -> list[bytes]:
        return self.answer.body

    @property
    def complete(self) -> bool:
        return self.answer.complete

    def start(self) -> None:
        """Ready for a new exchange."""
        self.answer.reset()
        self.received = False

    def receive(self) -> None:
        """Read what the server sent next and parse it; raises at the end of
        the stream when the answer is not complete by then."""
        data = self.sock.recv(READ_BUFFER)
        if not data:
            if not self.received:
                raise ClosedError("connection closed before an answer")
            self.answer.end_of_stream()
            self.answer.keep_alive = False
            return
        self.received = True
        self.answer.feed(data)

    def read_head(self) -> _Answer:
        """Read until the answer's head (after any interim answers) is in."""
        answer = self.answer
        while not answer.head_done:
            self.receive()
        return answer

    def is_reusable(self) -> bool:
        """The answer ended by its framing, the server keeps the connection,
        and it sent nothing past its answer."""
        answer = self.answer
        return answer.complete and answer.keep_alive and not answer.extra

    def is_dropped(self) -> bool:
        """True when the idle connection has something to read: the server
        closed it (EOF) or sent bytes nobody asked for. Either way it cannot
        carry a request. ``poll``, unlike ``select``, takes any descriptor."""
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        poller = select.poll()
        try:
            poller.register(self.sock, select.POLLIN | select.POLLPRI)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by the peer or by us

    def close(self) -> None:
        self.sock.close()
        self.answer.parser = None  # the parser and its callbacks' owner refer to each other


class Connections:
    """Kept-alive HTTP/1.1 connections to one API server; thread-safe."""

    def __init__(
        self, url: str, tls: TlsSettings | None = None, max_idle: int = MAX_IDLE, proxy: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL with a host: {url!r}")
        self._secure = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._secure else 80)
        self._host_header = parts.netloc.rpartition("@")[2]
        self._prefix = parts.path.rstrip("/")
        self._tls = tls or TlsSettings()
        self._proxy = _Proxy.parse(proxy) if proxy else None
        self._tls_state = self._tls.files_state() if self._secure else ()
        self._context = self._tls.context() if self._secure else None
        self._generation = 0
        self._tls_checked = time.monotonic()
        self._server_hostname = self._tls.server_hostname or self._host
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle

    @property
    def prefix(self) -> str:
        """The server URL's path, put before every request's."""
        return self._prefix

    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None,
        timeout: tuple[float, float],
    ) -> Response:
        conn, answer, sends = self._send(method, target, headers, body, timeout)
        try:
            while not answer.complete:
                conn.receive()
        except BaseException as exc:
            conn.close()
            if isinstance(exc, TimeoutError):
                self.drop_idle()
            raise
        data = b"".join(answer.body)
        self.give_back(conn)
        return Response(answer.status, answer.headers, data, sends)

    def stream(self, method: str, target: str, headers: Mapping[str, str], timeout: tuple[float, float]) -> Stream:
        conn, answer, sends = self._send(method, target, headers, None, timeout)
        return Stream(self, conn, answer.status, answer.headers, sends)

    def close(self) -> None:
        self.drop_idle()

    def drop_idle(self) -> None:
        """Close the kept connections. Called after a read timed out: the
        others most likely sit on the same dead path (a load balancer that
        failed over, a NAT entry gone), and a call handed one would wait out
        its own read timeout before trying a new connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def give_back(self, conn: _Connection) -> None:
        """Keep a connection whose exchange ended cleanly for the next call; close any other."""
        if conn.is_reusable() and conn.generation == self._generation:
            with self._lock:
                if len(self._idle) < self._max_idle:
                    self._idle.append(conn)
                    return
        conn.close()

    def _send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None,
        timeout: tuple[float, float],
    ) -> tuple[_Connection, _Answer, int]:
        """Send the request on a connection; the connection, the final answer
        with its head read, and how many times the request went out."""
        data = self._request(method, target, headers, body)
        sends = 0
        while True:
            sends += 1
            conn = self._take(timeout[0])
            try:
                conn.sock.settimeout(timeout[1])
                conn.start()
                try:
                    conn.sock.sendall(data)
                    return conn, conn.read_head(), sends
                except (ConnectionError, ClosedError, TimeoutError, ssl.SSLError) as exc:
                    if isinstance(exc, TimeoutError):
                        self.drop_idle()
                    if conn.received:
                        raise
                    closed_early = isinstance(exc, (ConnectionError, ClosedError))
                    if conn.reused and closed_early and method in RESENDABLE_METHODS:
                        # The server closed this kept connection while it sat
                        # idle; a read is safe to send again on a new one.
                        conn.close()
                        continue
                    raise MaybeSentError(
                        f"{method} sent, no answer ({type(exc).__name__}: {exc}); the server may have acted on it"
                    ) from exc
            except BaseException:
                conn.close()
                raise

    def _request(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
        """The request's bytes, head and body; ``ValueError`` before any is sent."""
        if method == "HEAD":
            # The answer's framing would be the request's, not its headers'
            # (a length and no body): nothing here sends one.
            raise ValueError("refused to send a HEAD request: not spoken by this transport")
        path = self._prefix + target
        if self._proxy is not None and not self._secure:
            path = f"http://{self._host_header}{path}"  # a plain-HTTP proxy takes the absolute form
        fields = [("Host", self._host_header), *headers.items()]
        if self._proxy is not None and not self._secure and self._proxy.authorization:
            fields.append(("Proxy-Authorization", self._proxy.authorization))
        length = len(body) if body else 0 if body is not None or method in BODY_METHODS else None
        head = request_head(method, path, fields, length)
        return head + body if body else head

    def _take(self, connect_timeout: float) -> _Connection:
        self._check_certificates()
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._open(connect_timeout)
            if conn.generation != self._generation or conn.is_dropped():
                conn.close()
                continue
            conn.reused = True
            return conn

    def _check_certificates(self, force: bool = False) -> None:
        """Rebuild the TLS context when a certificate file changed on disk."""
        if not self._secure:
            return
        now = time.monotonic()
        if not force and now < self._tls_checked + CERT_RECHECK_SECONDS:
            return
        self._tls_checked = now
        state = self._tls.files_state()
        if state == self._tls_state:
            return
        try:
            context = self._tls.context()
        except (OSError, ssl.SSLError):
            return  # caught mid-rotation (a key not matching its certificate yet): next time
        with self._lock:
            self._context, self._tls_state = context, state
            self._generation += 1
            stale, self._idle = self._idle, []
        for conn in stale:
            conn.close()

    def _open(self, connect_timeout: float) -> _Connection:
        self._check_certificates(force=True)
        generation, context = self._generation, self._context
        try:
            if self._proxy is not None:
                sock = socket.create_connection((self._proxy.host, self._proxy.port), timeout=connect_timeout)
            else:
                sock = socket.create_connection((self._host, self._port), timeout=connect_timeout)
        except OSError as exc:
            raise NotSentError(f"cannot connect: {exc}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            keep_alive(sock)
            if self._proxy is not None and self._secure:
                self._proxy.tunnel(sock, f"{self._host}:{self._port}")
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=self._server_hostname)
        except (OSError, ProtocolError) as exc:
            sock.close()
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise UntrustedServerError(f"cannot verify the server's certificate: {exc}") from exc
            raise NotSentError(f"cannot set up the connection: {exc}") from exc
        except BaseException:
            sock.close()
            raise
        return _Connection(sock, generation)


def keep_alive(sock: socket.socket) -> None:
    """Turn TCP keepalive on, with our timings where the platform lets us set
    them (Linux names them all; macOS calls the idle time ``TCP_KEEPALIVE``)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    for option, value in (
        (idle, KEEPALIVE_IDLE),
        (getattr(socket, "TCP_KEEPINTVL", None), KEEPALIVE_INTERVAL),
        (getattr(socket, "TCP_KEEPCNT", None), KEEPALIVE_COUNT),
    ):
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


@dataclass(frozen=True, slots=True)
class _Proxy:
    """An HTTP proxy from the kubeconfig's ``proxy-url``."""

    host: str
    port: int
    authorization: str | None

    @classmethod
    def parse(cls, url: str) -> _Proxy:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"unsupported proxy {url!r}: only http:// proxies are spoken")
        authorization = None
        if parts.username is not None:
            user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(user_pass.encode()).decode("ascii")
        return cls(parts.hostname, parts.port or 80, authorization)

    def tunnel(self, sock: socket.socket, authority: str) -> None:
        """Ask the proxy for a tunnel to ``authority`` (HTTP CONNECT). A 2xx
        answer's head ends the exchange: what follows is the tunnel's, and
        nothing may follow before our TLS handshake."""
        fields = [("Host", authority)]
        if self.authorization:
            fields.append(("Proxy-Authorization", self.authorization))
        sock.sendall(request_head("CONNECT", authority, fields))
        conn = _Connection(sock, 0)
        try:
            answer = conn.read_head()
        except ClosedError as exc:
            raise ProtocolError("proxy closed the connection during CONNECT") from exc
        except ProtocolError as exc:
            raise ProtocolError(f"proxy answered CONNECT badly: {exc}") from exc
        finally:
            conn.answer.parser = None
        if not 200 <= answer.status < 300:
            raise ProtocolError(f"proxy refused the tunnel: {answer.status}")
        if answer.body or answer.extra:
            raise ProtocolError("proxy sent bytes past its CONNECT answer")
