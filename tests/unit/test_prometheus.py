"""The controller's Prometheus query client and the ``Analyst`` the reconciler
measures with, against the scripted query API (``disvc.testing.prometheus_api``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from disvc.builders.analysis import Query
from disvc.builders.types import ObjectKey
from disvc.controller.prometheus import NOT_CONFIGURED, Analyst, Prometheus, QueryError
from disvc.testing import prometheus_api
from disvc.testing.prometheus_api import ScriptedPrometheus


@pytest.fixture
def server() -> Iterator[ScriptedPrometheus]:
    running = ScriptedPrometheus().start()
    yield running
    running.stop()


def test_a_single_value_is_returned_with_its_text(server: ScriptedPrometheus) -> None:
    server.script = lambda query: prometheus_api.value("0.0125")
    assert Prometheus(server.url).query('sum(rate(x{a="b"}[1m]))') == (0.0125, "0.0125")
    assert server.received() == ['sum(rate(x{a="b"}[1m]))']


def test_no_series_is_no_data(server: ScriptedPrometheus) -> None:
    assert Prometheus(server.url).query("absent") == (None, None)


@pytest.mark.parametrize(
    ("reply", "words", "invalid"),
    [
        (prometheus_api.bad_data("1:4: parse error: unexpected <EOF>"),
         "Prometheus refused the query (bad_data): 1:4: parse error: unexpected <EOF>", True),
        (prometheus_api.UNAVAILABLE, "Prometheus refused the query (unavailable): scripted outage", False),
        (prometheus_api.series(3), "returned 3 series, not one value", True),
        (prometheus_api.DROP, "unreachable", False),
    ],
    ids=["bad-data", "unavailable", "many-series", "dropped"],
)  # fmt: skip
def test_errors_say_why(server: ScriptedPrometheus, reply: prometheus_api.Reply, words: str, invalid: bool) -> None:
    server.script = lambda query: reply
    with pytest.raises(QueryError) as raised:
        Prometheus(server.url, timeout=2).query("q")
    assert words in str(raised.value) and raised.value.invalid is invalid


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(QueryError, match="unreachable"):
        Prometheus(f"http://127.0.0.1:{port}", timeout=2).query("q")


def test_the_bearer_token_is_read_from_its_file_for_every_query(server: ScriptedPrometheus, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    client = Prometheus(server.url, bearer_token_file=str(token))
    client.query("q")
    token.write_text("rotated")
    client.query("q")
    assert server.authorization == ["Bearer first", "Bearer rotated"]


def test_the_analyst_counts_each_verdict(server: ScriptedPrometheus) -> None:
    answers = {"a": prometheus_api.value("0.5"), "b": prometheus_api.value("NaN"), "c": prometheus_api.UNAVAILABLE}
    server.script = lambda query: answers[query]
    counted: list[tuple[str, str, str, str]] = []
    analyst = Analyst(Prometheus(server.url), count=lambda *labels: counted.append(labels))
    measured = analyst(
        ObjectKey("ns", "model"), [Query("a", "a", max=0.1), Query("b", "b", max=1), Query("c", "c", max=1)]
    )
    assert [(s.value, s.text) for s in measured.samples[:2]] == [(0.5, "0.5"), (None, "NaN")]
    assert counted == [
        ("ns", "model", "a", "fail"),
        ("ns", "model", "b", "inconclusive"),
        ("ns", "model", "c", "error"),
    ]


def test_without_a_url_every_measurement_is_an_error_that_says_so() -> None:
    (sample,) = Analyst(None)(ObjectKey("ns", "m"), [Query("a", "up", max=1)]).samples
    assert sample.error == NOT_CONFIGURED and sample.invalid
