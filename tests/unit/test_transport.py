"""The controller's HTTP/1.1 transport against a scripted server on loopback:
bodies by length and by chunks, kept-alive connections, connections the
server drops, TLS verified against a CA, and each finding of issue 24's
review (path prefix, Retry-After, certificate rotation, resent writes,
bytes past an answer, CR/LF in headers, descriptors past 1024, lenient
parsing), each pinned by a test that fails on the transport it replaced."""

from __future__ import annotations

import os
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from kubernetes import client as k8s_client

from disvc.controller import errors, tls
from disvc.controller.kube import Kube, retry, transport
from disvc.controller.reflector import Reflector
from disvc.controller.store import Store
from disvc.testing.polling import eventually

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
        self.on_connection: Callable[[ssl.SSLSocket], None] | None = None
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
                if self.on_connection is not None:
                    self.on_connection(conn)
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
    with pytest.raises(transport.MaybeSentError, match="closed before an answer"):
        transport.Connections(server.url).request("GET", "/", {}, None, TIMEOUT)


def test_a_garbled_answer_is_an_error(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([lambda _r: b"SSH-2.0-OpenSSH\r\n\r\n"])
    with pytest.raises(transport.ProtocolError):
        transport.Connections(server.url).request("GET", "/", {}, None, TIMEOUT)


def test_a_body_cut_short_is_an_error(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([lambda _r: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{}"])
    with pytest.raises(transport.ProtocolError):
        transport.Connections(server.url).request("GET", "/", {}, None, TIMEOUT)


def test_a_silent_server_times_out(serve: Callable[..., ScriptedServer]) -> None:
    never = threading.Event()
    server = serve([lambda _r: (never.wait(3), None)[1]])
    with pytest.raises(transport.MaybeSentError, match="TimeoutError"):
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
    with pytest.raises(transport.UntrustedServerError):
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


# -- issue 24's findings, one test (or two) each --------------------------------


def kube_for(url: str, token: str | None = None, **kwargs: object) -> Kube:
    configuration = k8s_client.Configuration(host=url)
    if token is not None:
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return Kube(k8s_client.ApiClient(configuration), **kwargs)  # type: ignore[arg-type]


def status(code: int, *headers: str, body: bytes = b"{}") -> Answer:
    extra = "".join(f"{h}\r\n" for h in headers)
    return lambda _r: f"HTTP/1.1 {code} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def request_lines(server: ScriptedServer) -> list[bytes]:
    return [r.split(b"\r\n", 1)[0] for r in server.requests]


def test_1_the_server_urls_path_prefix_goes_before_every_path(serve: Callable[..., ScriptedServer]) -> None:
    items = b'{"kind":"ServiceList","metadata":{"resourceVersion":"7"},"items":[]}'
    watch = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    server = serve([ok(b'{"metadata":{"name":"a"}}'), ok(items), lambda _r: watch])
    kube = kube_for(server.url + "/k8s/clusters/c-x/")

    kube.get("Service", "ns", "a")
    kube.list("Service", "ns")
    list(kube.watch("Service", "7", "ns"))

    lines = request_lines(server)
    assert lines[0] == b"GET /k8s/clusters/c-x/api/v1/namespaces/ns/services/a HTTP/1.1"
    assert lines[1].startswith(b"GET /k8s/clusters/c-x/api/v1/namespaces/ns/services?")
    assert lines[2].startswith(b"GET /k8s/clusters/c-x/api/v1/namespaces/ns/services?watch=true")


def test_2_a_long_retry_after_header_reaches_the_queue(serve: Callable[..., ScriptedServer]) -> None:
    # kube-apiserver's overload answer: the wait in a header, the body plain text.
    server = serve([status(429, "Retry-After: 7", "Content-Type: text/plain", body=b"Too many requests")])
    with pytest.raises(errors.TooManyRequestsError) as raised:
        kube_for(server.url).get("Service", "ns", "a")
    assert raised.value.retry_after == 7
    assert len(server.requests) == 1


def test_2_a_short_retry_after_header_is_waited_out_and_logged(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([status(503, "Retry-After: 1", body=b"busy"), ok(b'{"metadata":{"name":"a"}}')])
    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        assert kube_for(server.url).get("Service", "ns", "a") is not None
    assert time.monotonic() - started >= 1.0
    assert [entry["retryAfter"] for entry in logs if entry["event"] == "Waiting as the API server asked"] == [1.0]


def test_2_each_retry_after_waited_in_the_call_is_reported_by_verb_and_kind(
    serve: Callable[..., ScriptedServer],
) -> None:
    too_many = b'{"kind":"Status","code":429,"reason":"TooManyRequests"}'
    server = serve([
        status(429, "Retry-After: 1", body=too_many), ok(b'{"metadata":{"name":"a"}}'),
        status(429, "Retry-After: 1", body=too_many), ok(b'{"metadata":{"name":"e"}}'),
    ])  # fmt: skip
    waits: list[tuple[str, str, float]] = []
    kube = kube_for(server.url, on_retry_after=lambda *wait: waits.append(wait))

    kube.get("Service", "ns", "a")
    kube.create_event({"metadata": {"namespace": "ns", "name": "e"}})  # a create: retried on 429 only

    assert waits == [("get", "Service", 1.0), ("create", "Event", 1.0)]
    assert kube.bounded(1.0).on_retry_after is kube.on_retry_after


def test_2_a_retry_after_left_to_the_queue_is_not_reported_as_waited_but_names_the_request(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve([status(429, "Retry-After: 7", body=b'{"kind":"Status","code":429}')])
    waits: list[tuple[str, str, float]] = []
    with pytest.raises(errors.TooManyRequestsError) as raised:
        kube_for(server.url, on_retry_after=lambda *wait: waits.append(wait)).get("Service", "ns", "a")
    assert waits == []
    assert (raised.value.verb, raised.value.kind, raised.value.retry_after) == ("get", "Service", 7.0)


def test_3_a_rotated_ca_file_is_read_again(tmp_path: Path, serve: Callable[..., ScriptedServer]) -> None:
    def certificate(name: str) -> Path:
        cert_pem, key_pem = tls.self_signed_pem(["127.0.0.1"])
        (tmp_path / f"{name}.crt").write_bytes(cert_pem)
        (tmp_path / f"{name}.key").write_bytes(key_pem)
        return tmp_path / f"{name}.crt"

    old, new = certificate("old"), certificate("new")
    server = serve([ok(b"{}"), ok(b'{"after":"rotation"}')], tls.server_context(new, tmp_path / "new.key"))
    ca = tmp_path / "ca.crt"
    ca.write_bytes(old.read_bytes())
    connections = transport.Connections(server.url, transport.TlsSettings(ca_file=str(ca)))
    with pytest.raises(transport.UntrustedServerError):
        connections.request("GET", "/", {}, None, TIMEOUT)

    ca.write_bytes(new.read_bytes() + b"\n")  # the rotation on disk (a new size, a new mtime)

    assert connections.request("GET", "/", {}, None, TIMEOUT).body == b"{}"


@pytest.mark.parametrize("call", ["get", "apply"])
def test_3_a_server_certificate_the_ca_cannot_verify_is_transient_not_a_refusal(
    tmp_path: Path, serve: Callable[..., ScriptedServer], call: str
) -> None:
    # Mid-rotation the server may already serve a certificate from a CA whose
    # file has not been rewritten yet: nothing was sent, and the next
    # connection reads the CA file again. ssl's verification error is also a
    # ValueError, which the API client takes for a request it refused to send.
    (tmp_path / "tls.crt").write_bytes(tls.self_signed_pem(["127.0.0.1"])[0])
    other_cert, other_key = tls.self_signed_pem(["127.0.0.1"])
    (tmp_path / "other.crt").write_bytes(other_cert)
    (tmp_path / "other.key").write_bytes(other_key)
    server = serve([ok(b"{}")], tls.server_context(tmp_path / "other.crt", tmp_path / "other.key"))
    configuration = k8s_client.Configuration(host=server.url)
    configuration.ssl_ca_cert = str(tmp_path / "tls.crt")
    kube = Kube(k8s_client.ApiClient(configuration), retry_attempts=1)
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "ns"}}

    with pytest.raises(errors.TransientError) as raised:
        kube.get("Service", "ns", "a") if call == "get" else kube.apply(obj)

    assert not isinstance(raised.value, errors.UnknownOutcomeError), "nothing was sent"
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
    assert server.requests == []


def test_3_a_rotated_client_certificate_is_presented_on_new_connections(
    tmp_path: Path, serve: Callable[..., ScriptedServer]
) -> None:
    server_cert, server_key = tls.self_signed_pem(["127.0.0.1"])
    (tmp_path / "server.crt").write_bytes(server_cert)
    (tmp_path / "server.key").write_bytes(server_key)
    clients = {}
    for name in ("first", "second"):
        cert_pem, key_pem = client_certificate(name)
        (tmp_path / f"{name}.crt").write_bytes(cert_pem)
        (tmp_path / f"{name}.key").write_bytes(key_pem)
        clients[name] = cert_pem
    context = tls.server_context(tmp_path / "server.crt", tmp_path / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=(clients["first"] + clients["second"]).decode())
    seen: list[bytes] = []
    server = serve([ok(b"{}"), ok(b"{}")], context)
    server.on_connection = lambda conn: seen.append(conn.getpeercert(binary_form=True) or b"")

    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    cert.write_bytes(clients["first"])
    key.write_bytes((tmp_path / "first.key").read_bytes())
    connections = transport.Connections(
        server.url, transport.TlsSettings(ca_file=str(tmp_path / "server.crt"), cert_file=str(cert), key_file=str(key))
    )
    connections.request("GET", "/", {}, None, TIMEOUT)
    cert.write_bytes(clients["second"] + b"\n")
    key.write_bytes((tmp_path / "second.key").read_bytes())
    transport_module_recheck(connections)
    connections.request("GET", "/", {}, None, TIMEOUT)

    assert server.connections == 2  # the connection made with the old certificate was dropped
    assert [ssl.DER_cert_to_PEM_cert(der).encode() for der in seen] == [
        ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(clients[n].decode())).encode() for n in ("first", "second")
    ]


def client_certificate(name: str) -> tuple[bytes, bytes]:
    """A self-signed client certificate (``clientAuth``) and its key, PEM."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def transport_module_recheck(connections: transport.Connections) -> None:
    """Make the next call check the certificate files (instead of waiting CERT_RECHECK_SECONDS)."""
    connections._tls_checked = float("-inf")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_4_a_write_is_not_resent_when_a_reused_connection_closes_after_sending(
    serve: Callable[..., ScriptedServer], method: str
) -> None:
    # The server reads the write, then the connection dies before an answer.
    server = serve([ok(b"{}"), lambda _r: None, ok(b"{}")])
    connections = transport.Connections(server.url)
    connections.request("GET", "/", {}, None, TIMEOUT)

    with pytest.raises(transport.MaybeSentError):
        connections.request(method, "/x", {}, b"{}", TIMEOUT)

    assert [line.split(b" ")[0] for line in request_lines(server)] == [b"GET", method.encode()]


def test_4_a_read_is_resent_once_and_the_resend_is_counted(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([ok(b"{}"), lambda _r: None, ok(b'{"metadata":{"name":"a"}}')])
    counted: list[tuple[str, str, str]] = []
    kube = kube_for(server.url, on_request=lambda *r: counted.append(r))
    kube.get("Service", "ns", "a")

    assert kube.get("Service", "ns", "a") is not None

    assert counted == [("get", "Service", "200"), ("get", "Service", "<error>"), ("get", "Service", "200")]


def test_4_a_create_whose_fate_is_unknown_is_not_retried(serve: Callable[..., ScriptedServer]) -> None:
    never = threading.Event()
    server = serve([lambda _r: (never.wait(2), None)[1], ok(b"{}")])
    kube = kube_for(server.url, request_timeout=(1.0, 0.3))
    lease = {"spec": {"holderIdentity": "me"}}

    with pytest.raises(errors.UnknownOutcomeError):
        kube.create_lease("ns", "leader", lease)

    never.set()
    assert len(server.requests) == 1
    assert not retry._is_retryable(errors.UnknownOutcomeError("x"), replayable=True)


def test_4_a_create_answered_500_without_retry_after_is_not_retried(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([status(500), ok(b"{}")])
    with pytest.raises(errors.TransientError):
        kube_for(server.url).create_lease("ns", "leader", {})
    assert len(server.requests) == 1


def test_5_bytes_past_an_answer_never_answer_the_next_call(serve: Callable[..., ScriptedServer]) -> None:
    stale = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n" + b'{"old":1}'
    server = serve([lambda r: ok(b'{"n":1}')(r) + stale, ok(b'{"n":2}')])
    connections = transport.Connections(server.url)
    assert connections.request("GET", "/", {}, None, TIMEOUT).body == b'{"n":1}'
    time.sleep(0.1)  # the extra bytes arrive
    assert connections.request("GET", "/", {}, None, TIMEOUT).body == b'{"n":2}'
    assert server.connections == 2


def test_6_a_header_value_with_a_newline_is_refused_unsent(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([ok(b"{}")])
    with pytest.raises(ValueError, match="malformed request"):
        transport.Connections(server.url).request("GET", "/", {"Authorization": "Bearer abc\r\nX: y"}, None, TIMEOUT)
    assert server.requests == []


def test_6_a_token_ending_in_a_newline_is_sent_without_it(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([ok(b'{"metadata":{"name":"a"}}')])
    kube_for(server.url, token="abc\n").get("Service", "ns", "a")
    assert b"\r\nAuthorization: Bearer abc\r\n" in server.requests[0]


def test_7_connections_are_reused_with_descriptors_past_1024(serve: Callable[..., ScriptedServer]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("the descriptor limit is below 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        server = serve([ok(b"{}"), ok(b"{}")])
        connections = transport.Connections(server.url)
        connections.request("GET", "/", {}, None, TIMEOUT)
        connections.request("GET", "/", {}, None, TIMEOUT)
        assert server.connections == 1
    finally:
        for fd in filler:
            os.close(fd)
        connections.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_8_connection_close_among_other_tokens_is_honoured(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([ok(b"{}", "Connection: keep-alive, close"), ok(b"{}")])
    connections = transport.Connections(server.url)
    connections.request("GET", "/", {}, None, TIMEOUT)
    connections.request("GET", "/", {}, None, TIMEOUT)
    assert server.connections == 2


@pytest.mark.parametrize(
    "headers",
    [["X-Long: " + "a" * 70_000], [f"X-{i}: v" for i in range(10_000)]],
    ids=["one-line-past-64k", "ten-thousand-headers"],
)
def test_8_an_unbounded_header_block_is_refused(serve: Callable[..., ScriptedServer], headers: list[str]) -> None:
    server = serve([ok(b"{}", *headers)])
    with pytest.raises(transport.ProtocolError):
        transport.Connections(server.url).request("GET", "/", {}, None, TIMEOUT)


# -- requests written here, checked before a byte is sent ------------------------


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", "/a b", {}),
        ("GET", "/a\r\nX: y", {}),
        ("GET", "/", {"X-Name": "caf\u00e9"}),
        ("GET", "/", {"X Name": "v"}),
        ("GET", "/", {"X-Name": " padded"}),
        ("GET", "/", {"X-Name": "nul\x00"}),
        ("G ET", "/", {}),
        ("HEAD", "/", {}),
    ],
    ids=["space-in-target", "crlf-in-target", "non-ascii-value", "space-in-name", "edge-whitespace", "nul", "method", "head"],
)
def test_a_request_that_cannot_be_written_as_given_is_refused_unsent(
    serve: Callable[..., ScriptedServer], method: str, target: str, headers: dict[str, str],
) -> None:
    server = serve([ok(b"{}")])
    with pytest.raises(ValueError, match="refused to send"):
        transport.Connections(server.url).request(method, target, headers, None, TIMEOUT)
    assert server.requests == []


def test_a_request_head_is_written_with_host_and_length(serve: Callable[..., ScriptedServer]) -> None:
    server = serve([ok(b"{}")])
    transport.Connections(server.url).request("PATCH", "/x?a=1", {"Accept": "application/json"}, None, TIMEOUT)
    assert server.requests[0] == (
        f"PATCH /x?a=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAccept: application/json\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_a_watch_body_is_handed_out_as_it_arrives(serve: Callable[..., ScriptedServer]) -> None:
    # One chunk, and the rest of the body never comes: the chunk is handed
    # out at once, and closing the stream ends it.
    server = serve([lambda _r: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n"])
    stream = transport.Connections(server.url).stream("GET", "/watch", {}, TIMEOUT)
    chunks = stream.chunks()
    assert (stream.status, next(chunks)) == (200, b"one")
    stream.close()
    assert list(chunks) == []


def _connect_proxy(context: ssl.SSLContext, answer: bytes, seen: list[bytes]) -> int:
    """A proxy on loopback that answers one CONNECT with ``answer``; on a 2xx
    it speaks TLS (as the tunnelled server) and answers one GET."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += conn.recv(1)
            seen.append(head)
            conn.sendall(answer)
            if answer.startswith(b"HTTP/1.1 2"):
                try:
                    with context.wrap_socket(conn, server_side=True) as tunnelled:
                        request = b""
                        while not request.endswith(b"\r\n\r\n"):
                            request += tunnelled.recv(1)
                        seen.append(request)
                        body = b'{"tunnelled":true}'
                        tunnelled.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                except (OSError, ssl.SSLError):
                    pass  # the client gave the tunnel up
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return int(listener.getsockname()[1])


def _server_tls(tmp_path: Path) -> ssl.SSLContext:
    cert_pem, key_pem = tls.self_signed_pem(["127.0.0.1", "localhost"])
    (tmp_path / "tls.crt").write_bytes(cert_pem)
    (tmp_path / "tls.key").write_bytes(key_pem)
    return tls.server_context(tmp_path / "tls.crt", tmp_path / "tls.key")


def test_https_goes_through_a_proxy_tunnel_with_its_credentials(tmp_path: Path) -> None:
    seen: list[bytes] = []
    port = _connect_proxy(_server_tls(tmp_path), b"HTTP/1.1 200 Connection established\r\n\r\n", seen)
    connections = transport.Connections(
        "https://127.0.0.1:6443", transport.TlsSettings(ca_file=str(tmp_path / "tls.crt")),
        proxy=f"http://user:pa%40ss@127.0.0.1:{port}",
    )
    assert connections.request("GET", "/api", {}, None, TIMEOUT).body == b'{"tunnelled":true}'
    connect, request = seen
    assert connect.startswith(b"CONNECT 127.0.0.1:6443 HTTP/1.1\r\nHost: 127.0.0.1:6443\r\n")
    assert b"\r\nProxy-Authorization: Basic dXNlcjpwYUBzcw==\r\n" in connect  # user:pa@ss
    assert request.startswith(b"GET /api HTTP/1.1\r\n")
    assert b"Proxy-Authorization" not in request


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
     b"HTTP/1.1 200 OK\r\n\r\nstray bytes"],
    ids=["refused", "bytes-past-the-answer"],
)
def test_a_tunnel_the_proxy_did_not_open_cleanly_is_not_sent_on(tmp_path: Path, answer: bytes) -> None:
    seen: list[bytes] = []
    port = _connect_proxy(_server_tls(tmp_path), answer, seen)
    connections = transport.Connections(
        "https://127.0.0.1:6443", transport.TlsSettings(ca_file=str(tmp_path / "tls.crt")),
        proxy=f"http://127.0.0.1:{port}",
    )
    with pytest.raises(transport.NotSentError):
        connections.request("GET", "/api", {}, None, TIMEOUT)


def test_plain_http_through_a_proxy_uses_the_absolute_form(serve: Callable[..., ScriptedServer]) -> None:
    proxy = serve([ok(b"{}")])
    connections = transport.Connections("http://api.example:8080/prefix", proxy=f"http://u:p@127.0.0.1:{proxy.port}")
    connections.request("GET", "/api", {}, None, TIMEOUT)
    assert proxy.requests[0].startswith(b"GET http://api.example:8080/prefix/api HTTP/1.1\r\nHost: api.example:8080\r\n")
    assert b"\r\nProxy-Authorization: Basic dTpw\r\n" in proxy.requests[0]


@pytest.mark.parametrize("route", ["http", "https", "http-proxy"])
def test_every_connection_asks_the_kernel_to_probe_a_silent_peer(
    tmp_path: Path, serve: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch, route: str,
) -> None:
    # The descriptor is what survives TLS wrapping (the socket object does not).
    descriptors: list[int] = []
    connect = socket.create_connection

    def recording(*args: object, **kwargs: object) -> socket.socket:
        sock = connect(*args, **kwargs)  # type: ignore[arg-type]
        descriptors.append(sock.fileno())
        return sock

    monkeypatch.setattr(socket, "create_connection", recording)
    if route == "https":
        server = serve([ok(b"{}")], _server_tls(tmp_path))
        connections = transport.Connections(server.url, transport.TlsSettings(ca_file=str(tmp_path / "tls.crt")))
    elif route == "http-proxy":
        server = serve([ok(b"{}")])
        connections = transport.Connections("http://api.example:8080", proxy=f"http://127.0.0.1:{server.port}")
    else:
        server = serve([ok(b"{}")])
        connections = transport.Connections(server.url)
    connections.request("GET", "/api", {}, None, TIMEOUT)  # the connection stays open, kept for the next call

    (descriptor,) = descriptors
    with socket.socket(fileno=os.dup(descriptor)) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        for name, value in (("TCP_KEEPIDLE", transport.KEEPALIVE_IDLE),
                            ("TCP_KEEPINTVL", transport.KEEPALIVE_INTERVAL),
                            ("TCP_KEEPCNT", transport.KEEPALIVE_COUNT)):
            if hasattr(socket, name):
                assert sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name)) == value, name
    connections.close()


# -- half-open watches: the idle limit -------------------------------------------


def chunked_head(*events: bytes) -> bytes:
    """A watch answer's head and one chunk per event line; the body never ends."""
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"%x\r\n%s\r\n" % (len(line), line) for line in (e + b"\n" for e in events)
    )


BOOKMARK_20 = b'{"type":"BOOKMARK","object":{"kind":"Service","metadata":{"resourceVersion":"20"}}}'


def test_a_watch_that_receives_nothing_for_its_idle_limit_raises_idle_watch_error(
    serve: Callable[..., ScriptedServer],
) -> None:
    # One bookmark, then the server neither sends nor closes: a half-open
    # connection. The read gives up after the idle limit, not the server
    # timeout (300 s) plus its margin.
    server = serve([lambda _r: chunked_head(BOOKMARK_20), ok(b"{}")])  # a spare answer keeps it open
    watch = kube_for(server.url).watch("Service", "10", "ns", idle_timeout=0.3)
    assert next(watch)["object"]["metadata"]["resourceVersion"] == "20"
    raised: list[BaseException] = []

    def read_on() -> None:
        try:
            next(watch)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            raised.append(exc)

    reader = threading.Thread(target=read_on, daemon=True)
    reader.start()
    reader.join(30)  # generous; the server timeout (300 s) plus its margin is far past it
    watch.close()
    assert [type(exc) for exc in raised] == [errors.IdleWatchError], raised
    assert "nothing received for 0.3s" in str(raised[0])


def test_a_silent_watch_is_resumed_from_its_last_bookmark_without_a_relist(
    serve: Callable[..., ScriptedServer],
) -> None:
    items = b'{"kind":"ServiceList","metadata":{"resourceVersion":"10"},"items":[]}'
    added = b'{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"ns","resourceVersion":"21"}}}'
    server = serve([ok(items), lambda _r: chunked_head(BOOKMARK_20), lambda _r: chunked_head(added), ok(b"{}")])
    store, stop = Store(), threading.Event()
    reflector = Reflector(kube_for(server.url), "Service", store, _Ignore(), idle_timeout=0.3)
    thread = threading.Thread(target=reflector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(lambda: _assert(store.keys() == ["ns/a"]), timeout=30)
    finally:
        stop.set()
        reflector.interrupt()
        thread.join(10)
    first_list, first_watch, second_watch = request_lines(server)[:3]
    assert b"watch=true" not in first_list
    assert b"watch=true&resourceVersion=10&" in first_watch
    assert b"watch=true&resourceVersion=20&" in second_watch


class _Ignore:
    def on_add(self, obj: object) -> None: ...

    def on_update(self, old: object, new: object, *, relisted: bool = False) -> None: ...

    def on_delete(self, obj: object) -> None: ...


def _assert(condition: bool) -> None:
    assert condition


@pytest.mark.parametrize("how", ["watch", "call"])
def test_after_a_read_times_out_no_kept_connection_is_handed_out_again(
    serve: Callable[..., ScriptedServer], how: str
) -> None:
    """A read that timed out says the path to the server may be dead: the
    connections kept beside it are closed, so the next call opens a new one
    instead of waiting out its own timeout on a dead one."""
    never = threading.Event()
    silent: Answer = lambda _r: (never.wait(5), None)[1]
    if how == "watch":
        quiet_watch: Answer = lambda _r: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        server = serve([quiet_watch, ok(b"kept"), ok(b"after")])
        pool = transport.Connections(server.url)
        stream = pool.stream("GET", "/watch", {}, (1.0, 0.5))
        assert pool.request("GET", "/kept", {}, None, TIMEOUT).body == b"kept"  # a second connection, kept
        with pytest.raises(TimeoutError):
            list(stream.chunks())
    else:
        both = threading.Barrier(2, timeout=5)

        def kept(request: bytes) -> bytes | None:
            both.wait()  # both requests in flight: two connections, both kept afterwards
            return ok(b"kept")(request)

        server = serve([kept, kept, silent, ok(b"after")])
        pool = transport.Connections(server.url)
        callers = [threading.Thread(target=pool.request, args=("GET", "/kept", {}, None, TIMEOUT)) for _ in range(2)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(10)
        with pytest.raises(transport.MaybeSentError, match="TimeoutError"):
            pool.request("GET", "/slow", {}, None, (1.0, 0.5))
    assert server.connections == 2
    assert pool.request("GET", "/after", {}, None, TIMEOUT).body == b"after"
    assert server.connections == 3
    never.set()
