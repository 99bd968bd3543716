"""envtest start-up, checked with stand-in binaries.

The real etcd and kube-apiserver are not available here, so a fake
``KUBEBUILDER_ASSETS`` folder holds two tiny Python scripts under those
names: the fake etcd answers ``/health``; the fake kube-apiserver serves TLS
with the certificate envtest generated, accepts only the bearer token from
the token file envtest wrote, and records its command line. That exercises
everything envtest itself owns: PKI, flags, files, readiness wait,
kubeconfig, teardown.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from disvc.testing import envtest, pki
from disvc.testing.serving_tls import ServingTls

FAKE_ETCD = """\
import http.server, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
port = int(args["listen-client-urls"].rsplit(":", 1)[1])

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"health":"true"}' if self.path == "/health" else b"{}"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""

FAKE_APISERVER = """\
import http.server, json, pathlib, ssl, sys
here = pathlib.Path(sys.argv[0]).parent
(here / "apiserver-args.json").write_text(json.dumps(sys.argv))
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
token = pathlib.Path(args["token-auth-file"]).read_text().split(",")[0]
VERSION = {"major": "1", "minor": "99", "gitVersion": "v1.99.0-fake", "gitCommit": "0",
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1",
           "compiler": "gc", "platform": "linux/amd64"}

class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer " + token:
            code, body = 401, b'{"kind":"Status","code":401}'
        elif self.path == "/readyz":
            code, body = 200, b"ok"
        elif self.path.rstrip("/") == "/version":
            code, body = 200, json.dumps(VERSION).encode()
        else:
            code, body = 404, b'{"kind":"Status","code":404}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

server = http.server.HTTPServer(("127.0.0.1", int(args["secure-port"])), Api)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(args["tls-cert-file"], args["tls-private-key-file"])
server.socket = tls.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""

CRASHING_APISERVER = """\
import sys
print("error: failed to create listener: boom")
sys.exit(1)
"""


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    folder = tmp_path / "assets"
    folder.mkdir()
    _script(folder / "etcd", FAKE_ETCD)
    _script(folder / "kube-apiserver", FAKE_APISERVER)
    return folder


@pytest.fixture
def environment(assets: Path) -> Iterator[envtest.Environment]:
    env = envtest.Environment(assets, startup_timeout=20.0).start()
    yield env
    env.stop()


def _flags(args: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def test_kubeconfig_reaches_the_api_server_over_verified_tls_with_the_admin_token(
    environment: envtest.Environment,
) -> None:
    api_client = config.new_client_from_config(config_file=environment.kubeconfig)
    try:
        version = client.VersionApi(api_client).get_code()
    finally:
        api_client.close()
    assert version.git_version == "v1.99.0-fake"


def test_kubeconfig_names_the_server_the_ca_and_the_token(
    environment: envtest.Environment,
) -> None:
    written = yaml.safe_load(Path(environment.kubeconfig).read_text())
    cluster = written["clusters"][0]["cluster"]
    assert cluster["server"] == environment.url
    assert environment.pki is not None
    ca_pem = environment.pki.ca_cert.read_bytes()
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca_pem
    assert written["users"][0]["user"] == {"token": environment.token}


def test_api_server_runs_with_rbac_token_auth_and_service_account_signing(
    environment: envtest.Environment, assets: Path
) -> None:
    launched = json.loads((assets / "apiserver-args.json").read_text())
    flags = _flags(launched)
    assert launched == environment.apiserver_args
    assert flags["authorization-mode"] == "RBAC"
    assert environment.url == f"https://127.0.0.1:{flags['secure-port']}"
    assert flags["service-cluster-ip-range"] == envtest.DEFAULT_SERVICE_CLUSTER_IP_RANGE
    assert flags["etcd-servers"] == _flags(environment.etcd_args)["listen-client-urls"]
    assert flags["service-account-issuer"] == f"{environment.url}/"
    for key in (
        "service-account-key-file",
        "service-account-signing-key-file",
        "tls-cert-file",
        "tls-private-key-file",
        "client-ca-file",
    ):
        assert Path(flags[key]).is_file(), key
    token_line = Path(flags["token-auth-file"]).read_text().strip()
    assert token_line == f'{environment.token},envtest-admin,envtest-admin,"system:masters"'


def test_etcd_keeps_its_data_in_the_work_dir(environment: envtest.Environment) -> None:
    assert environment.work_dir is not None
    data_dir = Path(_flags(environment.etcd_args)["data-dir"])
    assert data_dir.parent == environment.work_dir


def test_stop_ends_both_processes_and_removes_the_work_dir(assets: Path) -> None:
    env = envtest.Environment(assets, startup_timeout=20.0).start()
    work_dir = env.work_dir
    processes = [env._etcd, env._apiserver]
    env.stop()
    assert work_dir is not None and not work_dir.exists()
    for process in processes:
        assert process is not None and process.popen.poll() is not None
    env.stop()  # a second stop is harmless


def test_api_server_that_exits_fails_start_with_its_log(assets: Path) -> None:
    _script(assets / "kube-apiserver", CRASHING_APISERVER)
    env = envtest.Environment(assets, startup_timeout=20.0)
    with pytest.raises(envtest.EnvtestError, match="failed to create listener: boom"):
        env.start()
    assert env.work_dir is None  # a failed start cleans up after itself


def test_missing_binary_is_named(tmp_path: Path) -> None:
    (tmp_path / "etcd").write_text("")
    with pytest.raises(envtest.EnvtestError, match="kube-apiserver not found"):
        envtest.Environment(tmp_path)


def test_serving_certificate_is_signed_by_the_ca_for_loopback(tmp_path: Path) -> None:
    pki = envtest.generate_pki(tmp_path)
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pki.ca_cert), str(pki.serving_cert)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    names = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(pki.serving_cert)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in names
    assert "DNS:kubernetes.default.svc" in names
    assert pki.service_account_key.stat().st_mode & 0o077 == 0


def test_restart_serves_new_certificates_on_the_same_port(
    environment: envtest.Environment, assets: Path, tmp_path: Path
) -> None:
    port = _flags(environment.apiserver_args)["secure-port"]
    rotated = pki.CertificateAuthority.create("rotated")
    tls = ServingTls(tmp_path / "new.crt", tmp_path / "new.key", tmp_path / "new-ca.crt", tmp_path / "client-ca.crt")
    rotated.serving().write(tls.cert, tls.key)
    tls.ca.write_bytes(rotated.cert_pem)
    tls.client_ca.write_bytes(pki.CertificateAuthority.create("clients").cert_pem)

    environment.restart_apiserver(tls)

    flags = _flags(json.loads((assets / "apiserver-args.json").read_text()))
    assert flags["secure-port"] == port
    assert (flags["tls-cert-file"], flags["tls-private-key-file"], flags["client-ca-file"]) == (
        str(tls.cert), str(tls.key), str(tls.client_ca),
    )
    with socket.create_connection(("127.0.0.1", int(port))) as sock:
        context = ssl.create_default_context(cafile=str(tls.ca))
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as secured:
            assert secured.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(tls.cert.read_text())
