"""The router's socket side: one loopback port for HTTP/1.1 and h2c.

The first bytes of a connection tell the protocols apart (RFC 9113 section
3.4: an h2c client with prior knowledge opens with the connection preface).

- HTTP/1.1 (RFC 9112, parsed with ``h11``): keep-alive, Content-Length and
  chunked bodies; each request is routed (kube-proxy's pick holds for the
  connection), sent to the pod on a fresh upstream connection and answered
  with ``X-Disvc-Pod``/``X-Disvc-Isvc`` and any affinity cookie added. As
  nginx's ``proxy_next_upstream error``: a connect failure tries the next
  endpoint (at most 3; nothing was sent, so any method may move); a failure
  after the request was sent answers 502.
- h2c: frames are buffered up to the end of the first HEADERS block, whose
  ``:authority`` and ``:path`` (HPACK, RFC 7541) route the connection; the
  buffered bytes then go to the pod and both directions are spliced, so
  every later stream on the connection reaches the same pod, as a TCP
  balancer would send them.

Each routed connection or request is logged as a :class:`Hop` for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections import deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Final

import h2.config
import h2.connection
import h11
import hpack

from disvc.testing.dataplane import http1
from disvc.testing.dataplane.pods import PodRegistry
from disvc.testing.dataplane.router.kubeproxy import Endpoint
from disvc.testing.dataplane.router.request import Decision, Request
from disvc.testing.dataplane.router.table import RoutingTable
from disvc.testing.dataplane.router.view import ClusterView, LaggingView

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CONNECT_TIMEOUT: Final = 2.0
RESPONSE_TIMEOUT: Final = 120.0
MAX_TRIES: Final = 3
_REASONS: Final = {404: b"default backend - 404", 500: b"Internal Server Error", 502: b"Bad Gateway",
                   503: b"Service Temporarily Unavailable"}


@dataclass(frozen=True, slots=True)
class Hop:
    """One routed HTTP/1.1 request or h2c connection."""

    protocol: str
    client: str
    host: str
    router: str
    pod: str | None
    status: int | None
    """The router's own answer (404, 502, 503...), None when the pod answered."""


class Router:
    """The loopback router, serving from a thread of its own."""

    def __init__(self, view: ClusterView, registry: PodRegistry, *, host: str = "127.0.0.1", port: int = 0,
                 apply_delay: float = 0.0, rng: random.Random | None = None) -> None:
        self._lagging = LaggingView(view, apply_delay) if apply_delay > 0 else None
        self.table = RoutingTable(self._lagging or view, registry, rng=rng)
        self._registry = registry
        self._address = (host, port)
        self._hops: deque[Hop] = deque(maxlen=100_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    def hops(self) -> list[Hop]:
        return list(self._hops)

    def start(self) -> tuple[str, int]:
        """Listen and serve; the bound (host, port)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="disvc-router", daemon=True)
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = None

    async def _open(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, *self._address)
        if self._lagging is not None:
            self._spawn(self._sample(self._lagging))
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _sample(view: LaggingView) -> None:
        while True:
            view.sample()
            await asyncio.sleep(max(0.01, view.delay / 10))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        client = str(writer.get_extra_info("peername")[0])
        try:
            first = b""
            while len(first) < len(PREFACE) and PREFACE.startswith(first):
                chunk = await reader.read(65536)
                if not chunk:
                    return
                first += chunk
            if first.startswith(PREFACE):
                await self._h2c(first, reader, writer, client)
            else:
                await self._http1(first, reader, writer, client)
        except (ConnectionError, asyncio.IncompleteReadError, h11.ProtocolError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    # -- h2c -------------------------------------------------------------

    async def _h2c(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   client: str) -> None:
        # gRPC clients wait for the server's SETTINGS before they send a
        # request, and the pod is chosen by that request: so the router speaks
        # first with empty SETTINGS (every value at its default, which the
        # pod's own SETTINGS then override) and keeps the client's ACK of
        # them from reaching the pod, which never sent them.
        writer.write(EMPTY_SETTINGS)
        await writer.drain()
        buffered = bytearray(first)
        found = await _first_headers(buffered, reader)
        if found is None:
            return
        stream_id, block = found
        headers = tuple((str(k).lower(), str(v)) for k, v in hpack.Decoder().decode(block))
        request = Request(client, _header(headers, ":authority") or _header(headers, "host") or "",
                          _header(headers, ":path") or "/", headers)
        decision = self.table.route(request, grpc=True)
        connected = None if decision.status is not None else await _connect(decision.endpoints)
        if connected is None:
            status = decision.status or 502
            self._hops.append(Hop("h2c", client, request.host, decision.router, None, status))
            writer.write(_h2_error(bytes(buffered), stream_id, status))
            await writer.drain()
            return
        (pod_reader, pod_writer), endpoint = connected
        self._hops.append(Hop("h2c", client, request.host, decision.router, endpoint.pod.name, None))
        ack_dropped = _drop_settings_ack(buffered)
        pod_writer.write(bytes(buffered))
        upstream = _pipe(reader, pod_writer) if ack_dropped else _pipe_without_settings_ack(reader, pod_writer)
        try:
            await asyncio.gather(upstream, _pipe(pod_reader, writer))
        finally:
            pod_writer.close()

    # -- HTTP/1.1 --------------------------------------------------------

    async def _http1(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     client: str) -> None:
        kept: dict[str, Decision] = {}  # kube-proxy picks, per host, for this connection

        async def answer(event: h11.Request, body: bytes) -> http1.Answer:
            return await self._forward(event, body, client, kept)

        await http1.serve(first, reader, writer, answer)

    def _decide(self, request: Request, kept: dict[str, Decision]) -> Decision:
        previous = kept.get(request.host)
        if previous is not None and self._still_ready(previous.endpoints[0]):
            return previous
        decision = self.table.route(request)
        if decision.per_connection and decision.endpoints:
            kept[request.host] = decision
        return decision

    def _still_ready(self, endpoint: Endpoint) -> bool:
        pod = self._registry.get(endpoint.pod.namespace, endpoint.pod.name)
        return pod is not None and pod.ready and pod.ip == endpoint.ip

    async def _forward(self, event: h11.Request, body: bytes, client: str,
                       kept: dict[str, Decision]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        headers = tuple((bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in event.headers)
        request = Request(client, _header(headers, "host") or "", bytes(event.target).decode("latin-1"), headers)
        decision = self._decide(request, kept)
        if decision.status is not None:
            return self._answer(request, decision, None, decision.status)
        connected = await _connect(decision.endpoints)
        if connected is None:
            return self._answer(request, decision, None, 502)
        (pod_reader, pod_writer), endpoint = connected
        try:
            status, reply, payload = await asyncio.wait_for(
                http1.exchange(pod_reader, pod_writer, event, body, [(b"x-forwarded-for", client.encode())]),
                RESPONSE_TIMEOUT)
        except (http1.UpstreamError, OSError, TimeoutError, asyncio.IncompleteReadError, h11.ProtocolError):
            return self._answer(request, decision, endpoint, 502)
        finally:
            pod_writer.close()
        self._hops.append(Hop("http/1.1", client, request.host, decision.router, endpoint.pod.name, None))
        added = [(b"x-disvc-pod", endpoint.pod.name.encode()), (b"x-disvc-isvc", endpoint.pod.isvc.encode())]
        added += [(k.encode(), v.encode()) for k, v in decision.response_headers]
        return status, [*http1.end_to_end(reply), (b"content-length", str(len(payload)).encode()), *added], payload

    def _answer(self, request: Request, decision: Decision, endpoint: Endpoint | None,
                status: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        self._hops.append(Hop("http/1.1", request.client_ip, request.host, decision.router,
                              None if endpoint is None else endpoint.pod.name, status))
        payload = _REASONS.get(status, b"error") + b"\n"
        return status, [(b"content-type", b"text/plain"), (b"content-length", str(len(payload)).encode())], payload


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


async def _connect(endpoints: list[Endpoint]) -> tuple[
        tuple[asyncio.StreamReader, asyncio.StreamWriter], Endpoint] | None:
    """The first of up to MAX_TRIES endpoints that accepts a connection."""
    for endpoint in endpoints[:MAX_TRIES]:
        with contextlib.suppress(OSError, TimeoutError):
            streams = await asyncio.wait_for(asyncio.open_connection(endpoint.ip, endpoint.port), CONNECT_TIMEOUT)
            return streams, endpoint
    return None


async def _first_headers(buffered: bytearray, reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """Read frames into ``buffered`` until the first complete header block:
    (its stream id, the HPACK block); None when the client leaves first."""
    position = len(PREFACE)
    block = bytearray()
    stream_id = 0
    while True:
        while len(buffered) - position >= 9:
            length = int.from_bytes(buffered[position:position + 3], "big")
            kind, flags = buffered[position + 3], buffered[position + 4]
            if len(buffered) - position - 9 < length:
                break
            payload = bytes(buffered[position + 9:position + 9 + length])
            frame_stream = int.from_bytes(buffered[position + 5:position + 9], "big") & 0x7FFFFFFF
            position += 9 + length
            if kind == 0x1:  # HEADERS: strip padding and priority fields
                if flags & 0x8:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & 0x20:
                    payload = payload[5:]
                block, stream_id = bytearray(payload), frame_stream
            elif kind == 0x9 and stream_id:  # CONTINUATION
                block += payload
            else:
                continue
            if flags & 0x4:  # END_HEADERS
                return stream_id, bytes(block)
        chunk = await reader.read(65536)
        if not chunk:
            return None
        buffered += chunk


EMPTY_SETTINGS: Final = bytes(9)[:3] + b"\x04" + bytes(5)
"""An HTTP/2 SETTINGS frame with no settings: length 0, type 4, no flags, stream 0."""
SETTINGS_ACK: Final = bytes(3) + b"\x04\x01" + bytes(4)


def _drop_settings_ack(buffered: bytearray) -> bool:
    """Remove the first SETTINGS ACK frame after the preface; True if one was there."""
    position = len(PREFACE)
    while len(buffered) - position >= 9:
        length = int.from_bytes(buffered[position:position + 3], "big")
        if bytes(buffered[position:position + 9]) == SETTINGS_ACK:
            del buffered[position:position + 9]
            return True
        position += 9 + length
    return False


async def _pipe_without_settings_ack(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Relay whole frames until the client's first SETTINGS ACK has been dropped,
    then bytes as they come."""
    try:
        while True:
            header = await reader.readexactly(9)
            if header == SETTINGS_ACK:
                break
            length = int.from_bytes(header[:3], "big")
            writer.write(header + await reader.readexactly(length))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
        return
    await _pipe(reader, writer)


def _h2_error(received: bytes, stream_id: int, status: int) -> bytes:
    """An h2 answer with ``status`` on the client's first stream, then GOAWAY."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    with contextlib.suppress(Exception):
        conn.receive_data(received)
    with contextlib.suppress(Exception):
        conn.send_headers(stream_id, [(":status", str(status)), ("content-length", "0")], end_stream=True)
    conn.close_connection()
    data: bytes = conn.data_to_send()
    return data


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
