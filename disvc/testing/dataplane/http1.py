"""HTTP/1.1 as the router and queue-proxy speak it: serving a client's
kept-alive connection, and one exchange with a pod.

Both forward a request they have read whole (h11 parses both directions):
hop-by-hop headers (RFC 9110 §7.6.1) stay on the hop they came from, the
body goes with its own ``Content-Length``, and each exchange uses a
connection of its own (``Connection: close``), so a pod's answer is never
mistaken for another request's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

import h11

Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, Headers, bytes]

HOP_BY_HOP: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)


class UpstreamError(Exception):
    """The request reached a pod but no whole response came back."""


def end_to_end(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """``headers`` without hop-by-hop ones and without a length (set anew)."""
    return [
        (bytes(k), bytes(v)) for k, v in headers if bytes(k).lower() not in HOP_BY_HOP | {b"content-length"}
    ]


async def next_event(conn: h11.Connection, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter | None = None) -> object:
    """The next h11 event, reading as needed; with ``writer``, a client that
    waits for ``100 Continue`` gets it."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        if writer is not None and conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        conn.receive_data(await reader.read(65536))


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: h11.Request, body: bytes,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> tuple[int, Headers, bytes]:
    """Send ``request`` with ``body`` (plus ``extra`` headers) and read the
    whole response: (status, its headers, its body)."""
    conn = h11.Connection(h11.CLIENT)
    headers = [*end_to_end(request.headers), *extra,
               (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    writer.write(conn.send(h11.Request(method=request.method, target=request.target, headers=headers)))
    if body:
        writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()
    response: h11.Response | None = None
    payload = bytearray()
    while True:
        part = await next_event(conn, reader)
        if isinstance(part, h11.Response):
            response = part
        elif isinstance(part, h11.Data):
            payload += part.data
        elif isinstance(part, h11.EndOfMessage) and response is not None:
            return response.status_code, [(bytes(k), bytes(v)) for k, v in response.headers], bytes(payload)
        elif not isinstance(part, h11.InformationalResponse):
            raise UpstreamError(f"pod closed the connection: {part!r}")


async def serve(
    first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    answer: Callable[[h11.Request, bytes], Awaitable[Answer]],
) -> None:
    """Answer each request of a client's connection (``first``: the bytes
    already read from it) with ``answer(request, body)``, until either side
    ends the connection."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(first)
    while True:
        event = await next_event(conn, reader, writer)
        if not isinstance(event, h11.Request):
            return
        body = bytearray()
        while not isinstance(part := await next_event(conn, reader, writer), h11.EndOfMessage):
            if not isinstance(part, h11.Data):
                return
            body += part.data
        status, headers, payload = await answer(event, bytes(body))
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        if payload and event.method != b"HEAD":
            writer.write(conn.send(h11.Data(data=payload)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return
        conn.start_next_cycle()
