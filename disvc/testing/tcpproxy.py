"""A loopback TCP proxy that can black-hole the connections it holds.

It stands in for what sits between a client and the API server and can fail
half-way: a proxy or load balancer that keeps each TCP connection up (its
kernel still acknowledges what the client sends and answers keepalive
probes) but, having lost its upstream or its state, forwards nothing either
way and closes nothing. ``blackhole()`` puts every connection held at that
moment in that state; connections made afterwards are forwarded as usual,
as a new connection through a healthy path would be. Neither side learns
anything: bytes are read and dropped, and an end of stream is not passed on.

Bytes pass through unchanged, so TLS stays end to end: the client verifies
the server it reaches through the proxy (give it ``tls-server-name`` when the
server's certificate does not name 127.0.0.1).
"""

from __future__ import annotations

import socket
import threading
from typing import Final, Self

from disvc.testing.running import Running

READ_SIZE: Final = 65536
CONNECT_TIMEOUT: Final = 5.0


class TcpProxy(Running):
    """Forwards connections to 127.0.0.1:``port`` on to ``upstream``; thread-safe."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._accepted = 0
        self.port = 0
        """Where clients connect, once started."""

    @property
    def accepted(self) -> int:
        """Connections accepted so far, black-holed or not."""
        with self._lock:
            return self._accepted

    def start(self) -> Self:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._listener,), name="tcpproxy-accept", daemon=True).start()
        return self

    def blackhole(self) -> int:
        """Stop forwarding on every connection held now, keeping each open;
        how many there were."""
        with self._lock:
            links = [link for link in self._links if not link.ended]
        for link in links:
            link.blackholed.set()
        return len(links)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self._upstream, timeout=CONNECT_TIMEOUT)
            except OSError:
                client.close()  # as a proxy without an upstream: the client sees its connection closed
                continue
            upstream.settimeout(None)
            link = _Link(client, upstream)
            with self._lock:
                self._accepted += 1
                self._links = [held for held in self._links if not held.ended] + [link]
            link.start()


class _Link:
    """One client connection and its upstream connection, pumped both ways."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.blackholed = threading.Event()
        self._closed = threading.Event()

    @property
    def ended(self) -> bool:
        return self._closed.is_set()

    def start(self) -> None:
        for source, target, from_client in ((self.client, self.upstream, True), (self.upstream, self.client, False)):
            threading.Thread(
                target=self._pump, args=(source, target, from_client), name="tcpproxy-pump", daemon=True
            ).start()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for sock in (self.client, self.upstream):
            _close(sock)

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(READ_SIZE)
            except OSError:
                data = b""
            if not data:
                if from_client or not self.blackholed.is_set():
                    self.close()  # the client left, or an end passed on while forwarding
                else:
                    _close(self.upstream)  # the server's end is swallowed: the client keeps waiting
                return
            if self.blackholed.is_set():
                continue
            try:
                target.sendall(data)
            except OSError:
                if not self.blackholed.is_set():
                    self.close()
                    return


def _close(sock: socket.socket) -> None:
    """Close a socket another thread may be blocked reading: shutting it down
    first wakes that read (closing alone does not)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected any more
    sock.close()
