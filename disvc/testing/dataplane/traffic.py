"""Clients for the data plane: the seed's request, and steady load from many clients.

A client is a source address in 127.0.0.0/8: routers tell clients apart by
the address a connection comes from (kube-proxy's ``ClientIP`` affinity,
ingress-nginx's ``$remote_addr`` hashing), so each simulated client binds
its own. Every request opens a fresh connection, as a new caller would:
kube-proxy balances connections, so reusing one would hide its choice.
A client keeps the cookies it is given (cookie affinity needs that).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Final, Self

from disvc.testing.running import Running

SEED_PAYLOAD: Final[dict[str, Any]] = {
    "inputs": [
        {
            "name": "input-0",
            "shape": [2, 4],
            "datatype": "FP32",
            "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]],
        }
    ]
}
"""The seed's v2 iris request (PoC 1); KServe's iris model answers ``[1, 1]``."""
SEED_ANSWER: Final = [1, 1]
POD_HEADER: Final = "X-Disvc-Pod"
ISVC_HEADER: Final = "X-Disvc-Isvc"


def infer_path(model: str) -> str:
    return f"/v2/models/{model}/infer"


def prediction(body: bytes) -> list[Any]:
    """The first output's data of a v2 inference answer."""
    answer = json.loads(body)
    data: list[Any] = answer["outputs"][0]["data"]
    return data


@dataclass(frozen=True, slots=True)
class Answer:
    """One request's outcome, as a client saw it."""

    source: str
    status: int
    """HTTP status; 0 when no answer came (connection refused, reset, timeout)."""
    pod: str | None = None
    isvc: str | None = None
    body: bytes = b""
    error: str | None = None
    at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(slots=True)
class Client:
    """One caller: a source address and the cookies routers gave it."""

    source: str
    cookies: dict[str, str] = field(default_factory=dict)

    def post(
        self,
        router: tuple[str, int],
        host: str,
        path: str,
        payload: Mapping[str, Any],
        timeout: float = 15.0,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        body = json.dumps(payload).encode()
        sent = {"Host": host, "Content-Type": "application/json", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.monotonic()
        connection = http.client.HTTPConnection(*router, timeout=timeout, source_address=(self.source, 0))
        try:
            connection.request("POST", path, body=body, headers=sent)
            response = connection.getresponse()
            content = response.read()
            for value in response.headers.get_all("Set-Cookie") or []:
                jar: SimpleCookie = SimpleCookie(value)
                self.cookies.update({k: m.value for k, m in jar.items()})
            return Answer(
                self.source, response.status, response.getheader(POD_HEADER),
                response.getheader(ISVC_HEADER), content, at=started,
            )  # fmt: skip
        except (OSError, http.client.HTTPException) as error:
            return Answer(self.source, 0, error=repr(error), at=started)
        finally:
            connection.close()

    def infer(self, router: tuple[str, int], host: str, model: str, **kwargs: Any) -> Answer:
        """The seed's request for ``model`` at ``host``."""
        return self.post(router, host, infer_path(model), SEED_PAYLOAD, **kwargs)


def client_addresses(count: int, first: int = 10) -> list[str]:
    """``count`` client source addresses, 127.0.0.<first>... (wrapping into 127.0.1.x)."""
    return [f"127.0.{(first + i) // 250}.{(first + i) % 250 + 1}" for i in range(count)]


class Load(Running):
    """Steady requests from many clients until stopped; every answer kept.

    One thread per client, each sending the seed's request in a loop with
    ``pause`` seconds between requests. ``answers`` holds every outcome in
    order of completion, for assertions such as "no request failed" or
    "each client always reached one pod".
    """

    def __init__(
        self,
        router: tuple[str, int],
        host: str,
        model: str,
        sources: Iterable[str],
        pause: float = 0.02,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.router, self.host, self.model = router, host, model
        self.clients = [Client(source) for source in sources]
        self.pause = pause
        self.headers = dict(headers or {})
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Self:
        for client_ in self.clients:
            thread = threading.Thread(target=self._run, args=(client_,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return self.snapshot()


    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def count(self) -> int:
        with self._lock:
            return len(self.answers)

    def _run(self, client_: Client) -> None:
        while not self._stop.is_set():
            answer = client_.infer(self.router, self.host, self.model, headers=self.headers)
            with self._lock:
                self.answers.append(answer)
            self._stop.wait(self.pause)


def failures(answers: Iterable[Answer]) -> list[Answer]:
    """Answers that were not a 200 with the seed's prediction."""
    bad = []
    for answer in answers:
        if not answer.ok:
            bad.append(answer)
            continue
        try:
            if prediction(answer.body) != SEED_ANSWER:
                bad.append(answer)
        except (ValueError, KeyError, IndexError):
            bad.append(answer)
    return bad


def pods_by_client(answers: Iterable[Answer]) -> dict[str, list[str]]:
    """Each client's answering pods, in order, with repeats collapsed."""
    seen: dict[str, list[str]] = {}
    for answer in answers:
        if answer.pod is None:
            continue
        pods = seen.setdefault(answer.source, [])
        if not pods or pods[-1] != answer.pod:
            pods.append(answer.pod)
    return seen
