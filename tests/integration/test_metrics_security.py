"""The controller's secure ``/metrics``, scraped the way Prometheus and strangers would.

The real controller runs with ``--metrics-secure``; requests go over HTTPS
with and without bearer tokens that the API server issued to
ServiceAccounts, one of them bound to the shipped ``metrics-reader``
ClusterRole. The API server (loopback or real) answers the controller's
TokenReviews and SubjectAccessReviews from the tokens and RBAC it holds.
"""

from __future__ import annotations

import http.client
import os
import ssl
from pathlib import Path

import pytest
import yaml

from disvc.controller import tls
from disvc.testing.accounts import Accounts

from .harness import RunningController, StartController

READER_ROLE = Path(__file__).resolve().parents[2] / "config" / "rbac" / "metrics_reader_role.yaml"


def unverified() -> ssl.SSLContext:
    # The controller's certificate is self-signed here; what is under test is the token check.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def fetch(
    controller: RunningController, path: str = "/metrics", token: str | None = None
) -> tuple[int, bytes, bytes | None]:
    """GET over HTTPS: (status, body, the server's certificate in DER)."""
    port = controller.manager.metrics_port
    assert port is not None
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=unverified())
    try:
        connection.connect()
        assert isinstance(connection.sock, ssl.SSLSocket)
        certificate = connection.sock.getpeercert(binary_form=True)
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), certificate
    finally:
        connection.close()


@pytest.fixture
def secure_controller(start_controller: StartController) -> RunningController:
    return start_controller(metrics_secure=True)


@pytest.fixture
def reader_token(accounts: Accounts) -> str:
    """A token of a ServiceAccount bound to the shipped metrics-reader ClusterRole."""
    rules = yaml.safe_load(READER_ROLE.read_text())["rules"]
    accounts.service_account("prometheus")
    accounts.bind_cluster_role(accounts.cluster_role("metrics-reader", rules), "prometheus")
    return accounts.token("prometheus")


def test_a_request_without_a_token_is_refused_with_401_and_no_body(secure_controller: RunningController) -> None:
    status, body, _ = fetch(secure_controller)
    assert (status, body) == (401, b"")


def test_a_token_the_api_server_never_issued_is_refused_with_401(secure_controller: RunningController) -> None:
    status, body, _ = fetch(secure_controller, token="made-up")
    assert (status, body) == (401, b"")


def test_a_token_bound_to_metrics_reader_reads_the_metrics(
    secure_controller: RunningController, reader_token: str
) -> None:
    status, body, _ = fetch(secure_controller, token=reader_token)
    assert status == 200
    text = body.decode()
    assert "controller_runtime_max_concurrent_reconciles" in text
    assert "disvc_managed" in text


def test_a_token_without_the_binding_is_refused_with_403_and_no_body(
    secure_controller: RunningController, accounts: Accounts
) -> None:
    accounts.service_account("tenant")
    status, body, _ = fetch(secure_controller, token=accounts.token("tenant"))
    assert (status, body) == (403, b"")


def test_the_reader_may_get_metrics_and_no_other_path(
    secure_controller: RunningController, reader_token: str
) -> None:
    status, body, _ = fetch(secure_controller, "/debug", token=reader_token)
    assert (status, body) == (403, b"")


def test_health_probes_stay_plain_http_without_a_token(secure_controller: RunningController) -> None:
    assert secure_controller.get("/healthz") == (200, "ok\n")
    assert secure_controller.get("/readyz") == (200, "ok\n")


def test_plain_http_gets_no_metrics_from_the_secure_port(secure_controller: RunningController) -> None:
    port = secure_controller.manager.metrics_port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            connection.request("GET", "/metrics")
            connection.getresponse().read()
    finally:
        connection.close()


def write_pair(directory: Path, hostname: str) -> bytes:
    """Write tls.crt/tls.key as the kubelet does a Secret volume: files behind
    a ``..data`` symlink swapped in one step. Returns the certificate (DER)."""
    cert_pem, key_pem = tls.self_signed_pem([hostname])
    version = directory / f"..{hostname}"
    version.mkdir()
    (version / tls.CERT_FILE).write_bytes(cert_pem)
    (version / tls.KEY_FILE).write_bytes(key_pem)
    staged = directory / "..data_tmp"
    staged.symlink_to(version.name)
    os.replace(staged, directory / "..data")
    for name in (tls.CERT_FILE, tls.KEY_FILE):
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    return ssl.PEM_cert_to_DER_cert(cert_pem.decode())


def test_the_certificate_comes_from_the_cert_dir_and_is_reloaded_when_renewed(
    start_controller: StartController, reader_token: str, tmp_path: Path
) -> None:
    cert_dir = tmp_path / "metrics-certs"
    cert_dir.mkdir()
    first = write_pair(cert_dir, "first.example")
    controller = start_controller(metrics_secure=True, metrics_cert_dir=str(cert_dir))

    status, _, served = fetch(controller, token=reader_token)
    assert (status, served) == (200, first)

    renewed = write_pair(cert_dir, "renewed.example")
    status, _, served = fetch(controller, token=reader_token)
    assert (status, served) == (200, renewed)


def test_without_a_mounted_certificate_it_serves_a_self_signed_one_until_one_appears(
    start_controller: StartController, reader_token: str, tmp_path: Path
) -> None:
    cert_dir = tmp_path / "empty-secret-volume"
    cert_dir.mkdir()
    controller = start_controller(metrics_secure=True, metrics_cert_dir=str(cert_dir))
    _, _, self_signed = fetch(controller, token=reader_token)
    assert self_signed

    issued = write_pair(cert_dir, "issued.example")
    status, _, served = fetch(controller, token=reader_token)
    assert (status, served) == (200, issued)
    assert served != self_signed
