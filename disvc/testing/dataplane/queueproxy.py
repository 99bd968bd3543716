"""Knative's queue-proxy hop in front of a Knative-mode pod's model server.

In KServe's Knative mode every predictor pod runs Knative's queue-proxy
next to the model: it declares the container port named ``queue-port``
(8012, or 8013 when the revision serves h2c; Knative's
``pkg/reconciler/revision/resources/queue.go``), forwards what arrives
there to the user container's port on the same pod, and counts the
requests it sees, which is what Knative's autoscaler scales on.

Here one asyncio thread serves every pod's hop on ``(pod IP, queue port)``:

- HTTP/1.1 (``h11``): each request is sent to the model server on a fresh
  connection and its answer relayed; every request is counted;
- h2c (the connection preface first): the connection is spliced to the
  model server's port, and every new client stream (a HEADERS frame with a
  stream id above the last one) is counted.

The counts are kept per revision and per pod (:meth:`QueueProxies.counts`),
so a test reads the load each revision saw, as the autoscaler would.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Final

import h11

from disvc.testing.dataplane import http1

QUEUE_PORT_NAME: Final = "queue-port"
QUEUE_HTTP_PORT: Final = 8012
"""``networking.BackendHTTPPort``: queue-port for HTTP/1 revisions."""
QUEUE_H2C_PORT: Final = 8013
"""``networking.BackendHTTP2Port``: queue-port for h2c revisions."""
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEADERS_FRAME: Final = 0x1
_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class Hop:
    """One pod's queue-proxy: where it listens and where it forwards."""

    namespace: str
    pod: str
    revision: str
    ip: str
    port: int
    user_port: int


class QueueProxies:
    """Every Knative-mode pod's queue-proxy, with per-revision request counts."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="queue-proxies", daemon=True)
        self._servers: dict[tuple[str, str], asyncio.Server] = {}
        self._lock = threading.Lock()
        self._by_revision: Counter[str] = Counter()
        self._by_pod: Counter[str] = Counter()
        self._thread.start()

    def open(self, hop: Hop) -> None:
        """Listen on the pod's queue port (raises OSError when it is taken)."""
        future = asyncio.run_coroutine_threadsafe(self._open(hop), self._loop)
        self._servers[(hop.namespace, hop.pod)] = future.result(10)

    def close(self, namespace: str, pod: str) -> None:
        server = self._servers.pop((namespace, pod), None)
        if server is not None:
            asyncio.run_coroutine_threadsafe(_close(server), self._loop).result(10)

    def counts(self) -> dict[str, int]:
        """Requests seen so far, per revision (``X-predictor-0000n``)."""
        with self._lock:
            return dict(self._by_revision)

    def pod_counts(self) -> dict[str, int]:
        """Requests seen so far, per pod name."""
        with self._lock:
            return dict(self._by_pod)

    def stop(self) -> None:
        for key in list(self._servers):
            self.close(*key)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # --- the loop's side -------------------------------------------------

    async def _open(self, hop: Hop) -> asyncio.Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self._serve(hop, reader, writer)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, h11.ProtocolError):
                pass
            finally:
                writer.close()

        return await asyncio.start_server(serve, hop.ip, hop.port)

    def _count(self, hop: Hop, requests: int = 1) -> None:
        with self._lock:
            self._by_revision[hop.revision] += requests
            self._by_pod[hop.pod] += requests

    async def _serve(self, hop: Hop, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(len(PREFACE))
        while first and PREFACE.startswith(first) and len(first) < len(PREFACE):
            more = await reader.read(len(PREFACE) - len(first))
            if not more:
                return
            first += more
        if first == PREFACE:
            await self._h2c(hop, first, reader, writer)
        elif first:
            await self._http1(hop, first, reader, writer)

    async def _h2c(self, hop: Hop, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        user_reader, user_writer = await asyncio.open_connection(hop.ip, hop.user_port)
        user_writer.write(first)
        frames = bytearray()
        last_stream = 0

        async def upstream() -> None:
            nonlocal last_stream
            while data := await reader.read(65536):
                user_writer.write(data)
                await user_writer.drain()
                frames.extend(data)
                while len(frames) >= 9:
                    length = int.from_bytes(frames[:3], "big")
                    if len(frames) < 9 + length:
                        break
                    stream = int.from_bytes(frames[5:9], "big") & 0x7FFFFFFF
                    if frames[3] == _HEADERS_FRAME and stream > last_stream:
                        last_stream = stream
                        self._count(hop)
                    del frames[: 9 + length]
            user_writer.close()

        try:
            await asyncio.gather(upstream(), _pipe(user_reader, writer))
        finally:
            user_writer.close()

    async def _http1(self, hop: Hop, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def answer(event: h11.Request, body: bytes) -> http1.Answer:
            self._count(hop)
            return await asyncio.wait_for(self._relay(hop, event, body), _TIMEOUT)

        await http1.serve(first, reader, writer, answer)

    async def _relay(
        self, hop: Hop, event: h11.Request, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        try:
            reader, writer = await asyncio.open_connection(hop.ip, hop.user_port)
        except OSError:
            return 502, [(b"content-length", b"0")], b""
        try:
            status, reply, payload = await http1.exchange(reader, writer, event, body)
        except (http1.UpstreamError, OSError, asyncio.IncompleteReadError, h11.ProtocolError):
            return 502, [(b"content-length", b"0")], b""
        finally:
            writer.close()
        return status, [*http1.end_to_end(reply), (b"content-length", str(len(payload)).encode())], payload


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _close(server: asyncio.Server) -> None:
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 2)
