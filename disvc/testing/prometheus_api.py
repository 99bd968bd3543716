"""A scripted Prometheus query API: ``/api/v1/query`` answering chosen values.

Follows Prometheus's HTTP API documentation (docs/querying/api.md, "Instant
queries" and "Format overview"): a query arrives as the ``query`` parameter
of a GET or a form-encoded POST; a success is ``{"status": "success",
"data": {"resultType": "vector", "result": [{"metric": {...}, "value":
[<unix time>, "<value as string>"]}]}}``, no data an empty ``result``; a
failure is ``{"status": "error", "errorType": ..., "error": ...}`` with
HTTP 400 for ``bad_data`` (a query that does not parse), 422 for
``execution``, 503 for ``timeout``/``unavailable``. Nothing else of
Prometheus is stood in for: tests choose every answer with ``script``.

``ScriptedPrometheus().start()`` listens on 127.0.0.1; ``script`` maps a
query to a ``Reply`` (a value, no data, an error, or ``DROP`` to close the
connection unanswered, as an unreachable server looks to a client), and
every query received is kept in ``queries``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Self


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: ``value`` (a string as Prometheus writes it), no data, or an error."""

    value: str | None = None
    error_type: str | None = None
    error: str = ""
    status: int = 200
    drop: bool = False
    series: int = 1
    """How many series carry ``value`` (more than one: an unaggregated query)."""


NO_DATA: Final = Reply()
DROP: Final = Reply(drop=True)
UNAVAILABLE: Final = Reply(error_type="unavailable", error="scripted outage", status=503)


def value(number: float | str) -> Reply:
    return Reply(value=str(number))


def series(count: int) -> Reply:
    """A vector of ``count`` series (an unaggregated query)."""
    return Reply(value="1", series=count)


def bad_data(message: str) -> Reply:
    return Reply(error_type="bad_data", error=message, status=400)


class ScriptedPrometheus:
    """The query API on an ephemeral port; ``url`` once started."""

    def __init__(self, script: Callable[[str], Reply] = lambda query: NO_DATA) -> None:
        self.script = script
        self.queries: list[tuple[float, str]] = []
        self.authorization: list[str | None] = []
        """The ``Authorization`` header of each query, in order."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def received(self) -> list[str]:
        with self._lock:
            return [query for _, query in self.queries]

    def start(self) -> Self:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(urllib.parse.urlsplit(self.path).query)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length).decode())

            def _answer(self, form: str) -> None:
                if urllib.parse.urlsplit(self.path).path != "/api/v1/query":
                    self.send_error(404)
                    return
                query = (urllib.parse.parse_qs(form).get("query") or [""])[0]
                with outer._lock:
                    outer.queries.append((time.time(), query))
                    outer.authorization.append(self.headers.get("Authorization"))
                reply = outer.script(query)
                if reply.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                body = json.dumps(_body(reply)).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="scripted-prometheus", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _body(reply: Reply) -> dict[str, Any]:
    if reply.error_type is not None:
        return {"status": "error", "errorType": reply.error_type, "error": reply.error}
    count = reply.series
    result = (
        []
        if reply.value is None
        else [{"metric": {"series": str(i)}, "value": [time.time(), reply.value]} for i in range(count)]
    )
    return {"status": "success", "data": {"resultType": "vector", "result": result}}
