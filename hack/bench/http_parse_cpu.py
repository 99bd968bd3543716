"""CPU per exchange of the HTTP/1.1 libraries alone, with no socket and no server.

    python hack/bench/http_parse_cpu.py [-n 20000]

Each candidate writes one GET's head (four header fields, as the controller
sends them) and parses one answer shaped like kube-apiserver's (seven header
fields, 420 bytes of body), ``n`` times; the figure is CPU time divided by
``n``. It isolates what ``http_cpu.py`` measures together with TLS and the
pool: the part a parser library decides. Candidates: h11 (a client
``Connection``, one cycle per exchange; its request event alone; parsing
alone, on a new ``Connection`` each time), and llhttp through httptools with the request head written and
checked by ``kube.transport.request_head``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import h11
import httptools

from disvc.controller.kube import transport

ANSWER = (
    b"HTTP/1.1 200 OK\r\nAudit-Id: 4f6c1f7e-0d4c-4b8e-9f1e-0a4b6b2b9c1d\r\nCache-Control: no-cache, private\r\n"
    b"Content-Type: application/json\r\nX-Kubernetes-Pf-Flowschema-Uid: 1c1e2f0a-7b7a-4e8e-8f55-6b2b0f3c1d11\r\n"
    b"X-Kubernetes-Pf-Prioritylevel-Uid: 9d3a6e2b-3c1a-4b8b-a6a1-7f1e9e0b4c22\r\n"
    b"Date: Sat, 06 Dec 2026 18:50:00 GMT\r\nContent-Length: 420\r\n\r\n" + b"x" * 420
)
TARGET = "/api/v1/namespaces/default/configmaps/disvc-http-bench"
FIELDS = [
    ("Host", "127.0.0.1:6443"),
    ("Accept", "application/json"),
    ("User-Agent", "disvc-controller/0.1.0"),
    ("Authorization", "Bearer 3172592af2e05e56a4b7d34829d3715d5104516a0c963e319"),
]


def h11_cycle(machine: h11.Connection) -> Callable[[], object]:
    def exchange() -> object:
        machine.send(h11.Request(method="GET", target=TARGET, headers=FIELDS))
        machine.send(h11.EndOfMessage())
        machine.receive_data(ANSWER)
        headers: dict[str, str] = {}
        while True:
            event = machine.next_event()
            if isinstance(event, h11.Response):
                headers = {n.decode("latin-1"): v.decode("latin-1") for n, v in event.headers}
            elif isinstance(event, h11.EndOfMessage):
                break
        machine.start_next_cycle()
        return headers

    return exchange


def h11_parse() -> object:
    machine = h11.Connection(h11.CLIENT)
    machine.receive_data(ANSWER)
    while not isinstance(machine.next_event(), h11.EndOfMessage):
        pass
    return machine


class _Answer:
    """What ``kube.transport`` keeps of an answer, as httptools' callbacks give it."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        self.complete = self.parser.should_keep_alive()


def llhttp_exchange(answer: _Answer) -> Callable[[], object]:
    def exchange() -> object:
        transport.request_head("GET", TARGET, FIELDS)
        answer.headers, answer.body, answer.complete = {}, [], False
        answer.parser.feed_data(ANSWER)
        assert answer.complete
        return b"".join(answer.body)

    return exchange


def cpu_per_call(call: Callable[[], object], n: int) -> float:
    for _ in range(100):
        call()
    start = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    candidates: dict[str, Callable[[], object]] = {
        "h11: request and answer (one cycle)": h11_cycle(h11.Connection(h11.CLIENT)),
        "h11: the Request event alone": lambda: h11.Request(method="GET", target=TARGET, headers=FIELDS),
        "h11: parsing the answer alone": h11_parse,
        "llhttp: head written here, answer parsed": llhttp_exchange(_Answer()),
        "llhttp: head written here alone": lambda: transport.request_head("GET", TARGET, FIELDS),
    }
    for name, call in candidates.items():
        best = min(cpu_per_call(call, args.n) for _ in range(args.rounds))
        print(f"{name:44s} {best * 1e6:6.1f} µs CPU (best of {args.rounds}, n={args.n})")


if __name__ == "__main__":
    main()
