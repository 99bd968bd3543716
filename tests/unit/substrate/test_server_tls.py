"""The loopback API over HTTPS: a client certificate from the client CA is
let in, one from another CA is not, and a restart with new certificates
keeps the stored objects (a rotation of kube-apiserver's certificates)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from disvc.testing import pki
from disvc.testing.apiserver import ApiServer
from disvc.testing.serving_tls import ServingTls

ADMIN_GROUPS = ("system:masters",)


def serving(directory: Path, server_ca: pki.CertificateAuthority, client_ca: pki.CertificateAuthority) -> ServingTls:
    directory.mkdir()
    tls = ServingTls(directory / "tls.crt", directory / "tls.key", directory / "ca.crt", directory / "client-ca.crt")
    server_ca.serving().write(tls.cert, tls.key)
    tls.ca.write_bytes(server_ca.cert_pem)
    tls.client_ca.write_bytes(client_ca.cert_pem)
    return tls


def client_context(tmp_path: Path, server_ca: pki.CertificateAuthority, client: pki.Pair) -> ssl.SSLContext:
    client.write(tmp_path / "client.crt", tmp_path / "client.key")
    context = ssl.create_default_context(cadata=server_ca.cert_pem.decode())
    context.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
    return context


def request(server: ApiServer, context: ssl.SSLContext, method: str = "GET", body: object = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{server.url}/api/v1/namespaces", data=data, method=method, headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, context=context, timeout=10) as answer:
        decoded: dict[str, object] = json.loads(answer.read())
        return decoded


@pytest.fixture
def cas() -> dict[str, pki.CertificateAuthority]:
    return {name: pki.CertificateAuthority.create(name) for name in ("server-1", "client-a", "server-2", "client-b")}


@pytest.fixture
def server(tmp_path: Path, cas: dict[str, pki.CertificateAuthority]) -> Iterator[ApiServer]:
    started = ApiServer(tls=serving(tmp_path / "one", cas["server-1"], cas["client-a"])).start()
    yield started
    started.stop()


def test_a_client_certificate_from_the_client_ca_is_served(
    server: ApiServer, tmp_path: Path, cas: dict[str, pki.CertificateAuthority]
) -> None:
    assert server.url.startswith("https://127.0.0.1:")
    context = client_context(tmp_path, cas["server-1"], cas["client-a"].client("admin", ADMIN_GROUPS))
    assert request(server, context)["kind"] == "NamespaceList"


def test_a_client_certificate_from_another_ca_is_turned_away(
    server: ApiServer, tmp_path: Path, cas: dict[str, pki.CertificateAuthority]
) -> None:
    context = client_context(tmp_path, cas["server-1"], cas["client-b"].client("admin", ADMIN_GROUPS))
    with pytest.raises((OSError, urllib.error.URLError)):
        request(server, context)


def test_a_restart_with_new_certificates_keeps_the_objects_and_trusts_only_the_new_cas(
    server: ApiServer, tmp_path: Path, cas: dict[str, pki.CertificateAuthority]
) -> None:
    before = client_context(tmp_path, cas["server-1"], cas["client-a"].client("admin", ADMIN_GROUPS))
    request(server, before, "POST", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kept"}})
    port = server.port

    server.restart(serving(tmp_path / "two", cas["server-2"], cas["client-b"]))

    assert server.port == port
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        request(server, before)
    old_client = client_context(tmp_path, cas["server-2"], cas["client-a"].client("admin", ADMIN_GROUPS))
    with pytest.raises((OSError, urllib.error.URLError)):
        request(server, old_client)
    after = client_context(tmp_path, cas["server-2"], cas["client-b"].client("admin", ADMIN_GROUPS))
    names = [item["metadata"]["name"] for item in request(server, after)["items"]]  # type: ignore[attr-defined]
    assert "kept" in names
