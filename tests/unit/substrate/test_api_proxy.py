"""The API proxy in front of the loopback API: which requests it refuses,
what its refusal looks like, that watches stream through, and that it
serves only below its path prefix."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from disvc.testing.api_proxy import ApiProxy, Refusal
from disvc.testing.apiserver import ApiServer

CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ApiProxy]:
    upstream = str(tmp_path / "upstream")
    with ApiServer() as server, ApiProxy(server.write_kubeconfig(upstream), tmp_path, throttle_every=3) as running:
        yield running


def connect(proxy: ApiProxy) -> http.client.HTTPSConnection:
    """A plain HTTPS connection as the proxy's kubeconfig describes it (the
    kubernetes client's urllib3 would itself wait out a 429 and retry)."""
    cluster = yaml.safe_load(Path(proxy.kubeconfig).read_text())["clusters"][0]["cluster"]
    host, port = cluster["server"].removeprefix("https://").removesuffix(proxy.path_prefix).split(":")
    context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=10)


def send(connection: http.client.HTTPSConnection, method: str, path: str, body: object = None) -> tuple[int, dict[str, str], dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    is_json = response.getheader("Content-Type", "").startswith("application/json")
    return response.status, dict(response.getheaders()), json.loads(data or b"{}") if is_json else {}


def config_map(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def test_every_third_request_is_refused_as_api_priority_and_fairness_refuses(proxy: ApiProxy) -> None:
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


def test_watches_are_never_refused_and_their_events_stream_through(proxy: ApiProxy) -> None:
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


def test_behind_a_path_prefix_only_paths_below_it_are_served(tmp_path: Path) -> None:
    prefix = "/k8s/clusters/c-x"
    upstream = str(tmp_path / "upstream")
    with ApiServer() as server, ApiProxy(server.write_kubeconfig(upstream), tmp_path, path_prefix=prefix) as proxy:
        server_url = yaml.safe_load(Path(proxy.kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
        assert server_url.endswith(prefix)
        connection = connect(proxy)
        created, _, _ = send(connection, "POST", prefix + CMS, config_map("under"))
        read, _, body = send(connection, "GET", f"{prefix}{CMS}/under")
        assert (created, read, body["metadata"]["name"]) == (201, 200, "under")  # type: ignore[index]
        assert send(connection, "GET", f"{CMS}/under")[0] == 404
        assert send(connection, "GET", f"{prefix}x{CMS}/under")[0] == 404
        assert proxy.strays == [f"{CMS}/under", f"{prefix}x{CMS}/under"]
        assert proxy.refused == []
