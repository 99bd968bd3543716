"""The controller's HTTP/1.1 transport against a scripted server on loopback:
bodies by length and by chunks, kept-alive connections, connections the
server drops, and TLS verified against a CA."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import urllib3

from disvc.controller import tls
from disvc.controller.kube import transport

TIMEOUT = (2.0, 5.0)
Answer = Callable[[bytes], bytes | None]
"""Given the request (head and body), the raw answer; None closes without one."""


class ScriptedServer:
    """Accepts connections and answers each request with the next scripted answer."""

    def __init__(self, answers: list[Answer], context: ssl.SSLContext | None = None) -> None:
        self._answers = list(answers)
        self._context = context
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self._context else 'http'}://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while self._answers:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self._context is not None:
                try:
                    conn = self._context.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    continue  # a client that refused our certificate
            threading.Thread(target=self._serve_connection, args=(conn,), daemon=True).start()

    def _serve_connection(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn:
            while self._answers:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = next(
                    (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), 0
                )
                request = head + reader.read(length)
                self.requests.append(request)
                answer = self._answers.pop(0)(request)
                if answer is None:
                    return
                conn.sendall(answer)
                if b"Connection: close" in answer or answer.startswith(b"HTTP/1.0"):
                    return  # an HTTP/1.0 answer without a length ends with the connection

    def close(self) -> None:
        self._listener.close()


def ok(body: bytes, *headers: str) -> Answer:
    extra = "".join(f"{h}\r\n" for h in headers)
    return lambda _request: f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(answers: list[Answer], context: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(answers, context))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_body_sized_by_content_length_and_the_connection_kept(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([ok(b'{"a":1}'), ok(b'{"b":2}')])
    connections = transport.Connections(server.url)
    first = connections.request("GET", "/api/v1/x", {"Accept": "application/json"}, None, TIMEOUT)
    second = connections.request("GET", "/api/v1/y", {}, None, TIMEOUT)
    assert (first.status, first.body, second.body) == (200, b'{"a":1}', b'{"b":2}')
    assert first.headers["content-length"] == "7"
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /api/v1/x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAccept: application/json\r\n" in server.requests[0]


def test_a_chunked_body_is_joined(serve: Callable[..., ScriptedServer]) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n"
    server = serve([lambda _r: chunked, ok(b"{}")])
    connections = transport.Connections(server.url)
    assert connections.request("GET", "/", {}, None, TIMEOUT).body == b'{"a":1}'
    assert connections.request("GET", "/", {}, None, TIMEOUT).body == b"{}"  # the stream stayed in step
    assert server.connections == 1


def test_a_request_body_is_sent_with_its_length(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([ok(b"{}"), ok(b"{}")])
    connections = transport.Connections(server.url)
    connections.request("PATCH", "/x", {"Content-Type": "application/apply-patch+yaml"}, b'{"k":"v"}', TIMEOUT)
    connections.request("POST", "/x", {}, None, TIMEOUT)
    assert server.requests[0].endswith(b"Content-Length: 9\r\n\r\n{\"k\":\"v\"}")
    assert b"Content-Length: 0\r\n" in server.requests[1]


def test_error_statuses_come_back_as_responses(serve: Callable[..., ScriptedServer]) -> None:
    body = b'{"kind":"Status","code":409}'
    server = serve([lambda _r: b"HTTP/1.1 409 Conflict\r\nContent-Length: %d\r\nRetry-After: 2\r\n\r\n%s" % (len(body), body)])
    response = transport.Connections(server.url).request("POST", "/", {}, b"{}", TIMEOUT)
    assert (response.status, response.body, response.headers["retry-after"]) == (409, body, "2")


def test_an_interim_100_answer_is_skipped(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([lambda r: b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"{}")(r)])
    assert transport.Connections(server.url).request("GET", "/", {}, None, TIMEOUT).status == 200


def test_connection_close_is_honoured(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([ok(b"{}", "Connection: close"), ok(b"{}")])
    connections = transport.Connections(server.url)
    connections.request("GET", "/", {}, None, TIMEOUT)
    connections.request("GET", "/", {}, None, TIMEOUT)
    assert server.connections == 2


def test_a_body_delimited_by_close_is_read_to_the_end(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([lambda _r: b'HTTP/1.0 200 OK\r\n\r\n{"old":true}', ok(b"{}")])
    connections = transport.Connections(server.url)
    assert connections.request("GET", "/", {}, None, TIMEOUT).body == b'{"old":true}'
    assert connections.request("GET", "/", {}, None, TIMEOUT).body == b"{}"
    assert server.connections == 2


def test_a_kept_connection_the_server_dropped_is_replaced(serve: Callable[..., ScriptedServer]) -> None:
    # The first answer keeps the connection by its headers, then the server
    # hangs up on the next request without answering, as a server closing an
    # idle connection does.
    server = serve([ok(b'{"n":1}'), lambda _r: None, ok(b'{"n":2}')])
    connections = transport.Connections(server.url)
    connections.request("GET", "/", {}, None, TIMEOUT)
    assert connections.request("GET", "/", {}, None, TIMEOUT).body == b'{"n":2}'
    assert server.connections == 2


def test_a_fresh_connection_closed_without_an_answer_is_an_error(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([lambda _r: None])
    with pytest.raises(OSError, match="closed before an answer"):
        transport.Connections(server.url).request("GET", "/", {}, None, TIMEOUT)


def test_a_garbled_answer_is_an_error(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([lambda _r: b"SSH-2.0-OpenSSH\r\n\r\n"])
    with pytest.raises(transport.ProtocolError, match="not an HTTP/1.x status line"):
        transport.Connections(server.url).request("GET", "/", {}, None, TIMEOUT)


def test_a_body_cut_short_is_an_error(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([lambda _r: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{}"])
    with pytest.raises(transport.ProtocolError, match="cut short"):
        transport.Connections(server.url).request("GET", "/", {}, None, TIMEOUT)


def test_a_silent_server_times_out(serve: Callable[..., ScriptedServer]) -> None:
    never = threading.Event()
    server = serve([lambda _r: (never.wait(3), None)[1]])
    with pytest.raises(TimeoutError):
        transport.Connections(server.url).request("GET", "/", {}, None, (1.0, 0.3))
    never.set()


def test_tls_verifies_the_server_against_the_ca(tmp_path: Path, serve: Callable[..., ScriptedServer]) -> None:
    cert_pem, key_pem = tls.self_signed_pem(["127.0.0.1", "localhost"])
    (tmp_path / "tls.crt").write_bytes(cert_pem)
    (tmp_path / "tls.key").write_bytes(key_pem)
    context = tls.server_context(tmp_path / "tls.crt", tmp_path / "tls.key")
    server = serve([ok(b'{"secure":true}'), ok(b"{}")], context)

    trusted = transport.Connections(server.url, transport.TlsSettings(ca_file=str(tmp_path / "tls.crt")))
    assert trusted.request("GET", "/", {}, None, TIMEOUT).body == b'{"secure":true}'

    untrusted = transport.Connections(server.url, transport.TlsSettings())
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusted.request("GET", "/", {}, None, TIMEOUT)


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 2xx OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
    ids=["status", "length", "chunk-size"],
)
def test_unreadable_numbers_are_protocol_errors(serve: Callable[..., ScriptedServer], answer: bytes) -> None:
    server = serve([lambda _r: answer])
    with pytest.raises(transport.ProtocolError):
        transport.Connections(server.url).request("GET", "/", {}, None, TIMEOUT)


def test_a_kubeconfig_with_a_proxy_goes_through_urllib3(serve: Callable[..., ScriptedServer]) -> None:
    from kubernetes import client as k8s_client

    configuration = k8s_client.Configuration()
    configuration.host = "https://10.0.0.1:6443"
    configuration.proxy = "http://proxy.example:3128"
    assert isinstance(transport.from_api_client(k8s_client.ApiClient(configuration)), transport.ProxiedConnections)
    configuration.proxy = None
    assert isinstance(transport.from_api_client(k8s_client.ApiClient(configuration)), transport.Connections)

    # The urllib3 path answers in the same shape (a plain pool stands in for the proxy's).
    server = serve([lambda _r: b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nAudit-Id: a1\r\n\r\n{}"])
    response = transport.ProxiedConnections(server.url, urllib3.PoolManager()).request(
        "GET", "/api/v1/x", {"Accept": "application/json"}, None, TIMEOUT
    )
    assert (response.status, response.body, response.headers["audit-id"]) == (404, b"{}", "a1")
