"""The router over real loopback sockets: HTTP/1.1 backends, an h2c backend, many client addresses."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from router_world import FakeView, ingress, service

from disvc.testing.dataplane.pods import ContainerPort, Pod, PodRegistry
from disvc.testing.dataplane.router.server import Router


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def _answer(self, body: bytes) -> None:
        payload = json.dumps({"pod": self.server.pod_name, "body": body.decode(),  # type: ignore[attr-defined]
                              "forwarded": self.headers.get("X-Forwarded-For")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def _h2_backend(sock: socket.socket, name: str) -> None:
    """Answers each h2 stream with 200 and header ``backend: <name>``."""
    while True:
        try:
            client, _ = sock.accept()
        except OSError:
            return
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        client.sendall(conn.data_to_send())
        while data := client.recv(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    conn.send_headers(event.stream_id, [(":status", "200"), ("backend", name)], end_stream=True)
            client.sendall(conn.data_to_send())
        client.close()


@pytest.fixture
def cluster() -> Iterator[tuple[Router, str, int, FakeView, PodRegistry]]:
    registry = PodRegistry()
    servers: list[Any] = []
    for i in range(3):
        ip = registry.allocate_ip()
        server = http.server.ThreadingHTTPServer((ip, 0), _Echo)
        server.pod_name = f"demo-{i}"  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        registry.add(Pod("ns", f"demo-{i}", f"demo-v1-{i}", {"app": "demo"}, ip,
                         (ContainerPort(server.server_address[1], "http"),), ready=True))
    ip = registry.allocate_ip()
    grpc = socket.create_server((ip, 0))
    threading.Thread(target=_h2_backend, args=(grpc, "grpc-0"), daemon=True).start()
    registry.add(Pod("ns", "grpc-0", "grpc-v1-0", {"app": "grpc"}, ip,
                     (ContainerPort(grpc.getsockname()[1], "grpc"),), ready=True))
    view = FakeView([service("demo", {"app": "demo"}, target="http", affinity=True, ns="ns"),
                     service("plain", {"app": "demo"}, target="http", ns="ns"),
                     service("grpc", {"app": "grpc"}, target="grpc", ns="ns"),
                     service("empty", {"app": "nobody"}, ns="ns")],
                    [ingress("demo", "demo-ns.example.com", "demo", ns="ns"),
                     ingress("empty", "empty-ns.example.com", "empty", ns="ns")])
    router = Router(view, registry)
    host, port = router.start()
    yield router, host, port, view, registry
    router.stop()
    for server in servers:
        server.shutdown()
    grpc.close()


def get(port: int, host: str, client: str = "127.0.0.2", body: bytes | None = None,
        conn: http.client.HTTPConnection | None = None) -> http.client.HTTPResponse:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(client, 0))
    conn.request("POST" if body is not None else "GET", "/v2/models", body=body, headers={"Host": host})
    response = conn.getresponse()
    response.read()
    return response


def test_in_cluster_names_keep_each_client_on_its_pod(cluster: Any) -> None:
    router, _, port, _, _ = cluster
    by_client: dict[str, set[str]] = {}
    for i in range(2, 14):
        for name in ("demo.ns.svc.cluster.local", "demo.ns.svc:80", "demo.ns"):
            response = get(port, name, client=f"127.0.0.{i}")
            assert response.status == 200
            assert response.headers["X-Disvc-Isvc"].startswith("demo-v1-")
            by_client.setdefault(f"127.0.0.{i}", set()).add(response.headers["X-Disvc-Pod"])
    assert all(len(pods) == 1 for pods in by_client.values())
    assert len(set.union(*by_client.values())) > 1
    assert {hop.router for hop in router.hops()} == {"kube-proxy"}


def test_ingress_round_robins_requests_on_one_connection(cluster: Any) -> None:
    _, _, port, _, _ = cluster
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.3", 0))
    pods = [get(port, "demo-ns.example.com", conn=conn).headers["X-Disvc-Pod"] for _ in range(6)]
    assert len(set(pods[:3])) == 3 and pods[:3] == pods[3:]


def test_bodies_reach_the_pod_content_length_and_chunked(cluster: Any) -> None:
    _, _, port, _, _ = cluster
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.4", 0))
    conn.request("POST", "/", body=b'{"instances": [[1]]}', headers={"Host": "plain.ns"})
    answer = json.loads(conn.getresponse().read())
    assert answer["body"] == '{"instances": [[1]]}' and answer["forwarded"] == "127.0.0.4"
    conn.request("POST", "/", body=iter([b"ab", b"cd"]), headers={"Host": "plain.ns"}, encode_chunked=True)
    assert json.loads(conn.getresponse().read())["body"] == "abcd"


def test_unknown_host_404_and_no_endpoints_503(cluster: Any) -> None:
    _, _, port, _, _ = cluster
    assert get(port, "nowhere.example.com").status == 404
    assert get(port, "empty-ns.example.com").status == 503
    assert get(port, "empty.ns.svc").status == 503


def test_a_dead_pod_is_skipped_before_sending(cluster: Any) -> None:
    _, _, port, _, registry = cluster
    registry.add(Pod("ns", "dead", "dead-v1", {"app": "demo"}, registry.allocate_ip(),
                     (ContainerPort(1, "http"),), ready=True))
    assert all(get(port, "demo-ns.example.com").status == 200 for _ in range(8))


def test_h2c_is_routed_by_authority(cluster: Any) -> None:
    router, _, port, _, _ = cluster
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.5", 0))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "grpc.ns.svc:80"),
                          (":path", "/inference.GRPCInferenceService/ServerLive")], end_stream=True)
    sock.sendall(conn.data_to_send())
    headers: dict[str, str] = {}
    while not headers:
        data = sock.recv(65536)
        assert data
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                headers = {bytes(k).decode(): bytes(v).decode() for k, v in event.headers}
    sock.close()
    assert headers[":status"] == "200" and headers["backend"] == "grpc-0"
    assert [(h.protocol, h.client, h.pod) for h in router.hops() if h.protocol == "h2c"] == [
        ("h2c", "127.0.0.5", "grpc-0")]
