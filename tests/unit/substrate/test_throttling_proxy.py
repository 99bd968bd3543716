"""The throttling proxy in front of the loopback API: which requests it
refuses, what its refusal looks like, and that watches stream through."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from disvc.testing.apiserver import ApiServer
from disvc.testing.throttling_proxy import Refusal, ThrottlingProxy

CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ThrottlingProxy]:
    with ApiServer() as server, ThrottlingProxy(server.write_kubeconfig(str(tmp_path / "upstream")), tmp_path) as running:
        yield running


def connect(proxy: ThrottlingProxy) -> http.client.HTTPSConnection:
    """A plain HTTPS connection as the proxy's kubeconfig describes it (the
    kubernetes client's urllib3 would itself wait out a 429 and retry)."""
    cluster = yaml.safe_load(Path(proxy.kubeconfig).read_text())["clusters"][0]["cluster"]
    host, port = cluster["server"].removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=10)


def send(connection: http.client.HTTPSConnection, method: str, path: str, body: object = None) -> tuple[int, dict[str, str], dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")


def config_map(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def test_every_third_request_is_refused_as_api_priority_and_fairness_refuses(proxy: ThrottlingProxy) -> None:
    connection = connect(proxy)

    answers = [send(connection, "POST", CMS, config_map(f"c{i}")) for i in range(3)]
    answers += [send(connection, "GET", f"{CMS}/c{i}") for i in range(3)]

    assert [code for code, _, _ in answers] == [201, 201, 429, 200, 200, 429]
    _, headers, status = answers[2]
    assert headers["Retry-After"] == "3"
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "TooManyRequests", 429)
    assert status["details"] == {"retryAfterSeconds": 3}
    assert proxy.refused == [Refusal("POST", CMS), Refusal("GET", f"{CMS}/c2")]
    assert proxy.forwarded == 4


def test_watches_are_never_refused_and_their_events_stream_through(proxy: ThrottlingProxy) -> None:
    watch = connect(proxy)
    watch.request("GET", f"{CMS}?watch=true&resourceVersion=0")
    stream = watch.getresponse()
    assert stream.status == 200
    writer = connect(proxy)
    codes = [send(writer, "POST", CMS, config_map(name))[0] for name in ("a", "b")]

    events = [json.loads(stream.readline()) for _ in codes]

    assert codes == [201, 201]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a"), ("ADDED", "b")]
    assert proxy.refused == []
    watch.close()
