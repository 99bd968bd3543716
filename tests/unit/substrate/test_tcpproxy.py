"""The black-holing TCP proxy: it forwards both ways until told, then holds
its connections open while forwarding nothing, and still forwards new ones."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from disvc.testing.tcpproxy import TcpProxy

SILENCE = 0.3
"""How long a read waits to show that nothing came (any wait would do: a
black hole never sends)."""


class Echo:
    """Echoes every connection's bytes back; ``hang_up()`` closes them all."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        try:
            while data := conn.recv(4096):
                conn.sendall(data)
        except OSError:
            pass

    def hang_up(self) -> None:
        connections, self._connections = self._connections, []
        for conn in connections:
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self._listener.close()
        self.hang_up()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


def connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=10)


def test_bytes_pass_both_ways_until_the_black_hole(echo: Echo) -> None:
    with TcpProxy("127.0.0.1", echo.port) as proxy, connect(proxy) as client:
        client.sendall(b"ping")
        assert client.recv(4096) == b"ping"
        assert proxy.blackhole() == 1

        client.sendall(b"lost")  # accepted by the proxy's kernel, never forwarded
        client.settimeout(SILENCE)
        with pytest.raises(TimeoutError):
            client.recv(4096)


def test_a_black_holed_connection_stays_open_when_the_server_hangs_up(echo: Echo) -> None:
    with TcpProxy("127.0.0.1", echo.port) as proxy, connect(proxy) as client:
        client.sendall(b"ping")
        assert client.recv(4096) == b"ping"
        proxy.blackhole()
        echo.hang_up()
        client.settimeout(SILENCE)
        with pytest.raises(TimeoutError):
            client.recv(4096)  # no end of stream: the client is never told


def test_connections_made_after_the_black_hole_are_forwarded(echo: Echo) -> None:
    with TcpProxy("127.0.0.1", echo.port) as proxy, connect(proxy) as first:
        first.sendall(b"ping")
        assert first.recv(4096) == b"ping"
        proxy.blackhole()
        with connect(proxy) as second:
            second.sendall(b"pong")
            assert second.recv(4096) == b"pong"
        assert proxy.accepted == 2
