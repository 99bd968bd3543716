"""A running watch: the response stream decoded into events as they arrive.

The API server sends one JSON event per line (and, in practice, per HTTP
chunk), over the same kind of connection as every other call
(``transport.Stream``). ``Watch`` yields ``{"type", "object"}`` events with ``apiVersion``
and ``kind`` filled in (the server leaves them out of list items and some
events); an ``ERROR`` event raises the same error as the equivalent HTTP
status (``responses.status_error``), so 410 Gone reaches the reflector as
``GoneError`` whichever way it came. A read that waits past the watch's
read timeout (its idle limit) raises ``IdleWatchError``: nothing arrived,
not even a bookmark, so the connection is taken for dead.
``close()`` may be called from another
thread: it shuts the socket down so a reader blocked on it returns promptly
(the reflector's stop path), and iteration then ends quietly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Self

from disvc.builders.types import Obj
from disvc.controller import errors
from disvc.controller.kube import responses, transport


class Watch(Iterator[Obj]):
    """Iterates the events of one watch response; see the module docstring."""

    def __init__(self, response: transport.Stream, kind: str, api_version: str, idle_timeout: float) -> None:
        self._response = response
        self._kind = kind
        self._api_version = api_version
        self._idle_timeout = idle_timeout
        self._closed = threading.Event()
        self._events = self._read_events()

    def __next__(self) -> Obj:
        return next(self._events)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._response.close()

    def _read_events(self) -> Iterator[Obj]:
        pending = b""
        try:
            for chunk in self._response.chunks():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._event(line)
            if pending.strip():
                yield self._event(pending)
        except TimeoutError as exc:
            if self._closed.is_set():
                return
            raise errors.IdleWatchError(
                f"watch {self._kind}: nothing received for {self._idle_timeout:g}s"
            ) from exc
        except responses.TRANSPORT_ERRORS as exc:
            if self._closed.is_set():
                return  # closed on purpose: the broken read is ours
            raise errors.TransientError(f"watch {self._kind} broken: {exc}") from exc
        finally:
            self.close()

    def _event(self, line: bytes) -> Obj:
        event: Obj = json.loads(line)
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":
            raise responses.status_error(int(obj.get("code") or 500), obj, None, f"watch {self._kind}")
        obj.setdefault("apiVersion", self._api_version)
        obj.setdefault("kind", self._kind)
        return event
