"""A throwaway control plane: etcd and kube-apiserver from ``$KUBEBUILDER_ASSETS``.

When the test suite should judge the controller against the real Kubernetes
API server rather than the loopback one, this module starts the two binaries
that `setup-envtest` downloads, the same way controller-runtime's envtest
does: an etcd with a temporary data directory, and a kube-apiserver in front
of it that serves TLS on a free port, authenticates one admin bearer token
(group ``system:masters``, so RBAC lets it do everything) and signs
service-account tokens. It then writes a kubeconfig holding that token and
the CA, which is all the ``kube`` fixture (``disvc.testing.fixtures``) needs.

A test may bring its own serving certificate and client CA
(``serving_tls.ServingTls``) and restart the API server alone, on the same
port and etcd, with others (``restart_apiserver``): a certificate rotation as cert-manager or kubeadm
does it, with the stored objects kept.

There is no scheduler or controller-manager, exactly as in envtest: no Pods
run and no garbage collector deletes dependents. Tests that need those
belong on a full cluster (``DISVC_TEST_KUBECONFIG``). A deleted namespace is
not emptied either; the ``kube`` fixture does that after each test
(``namespace_controller``), or the Services of earlier tests would use up
the service range.

The pure pieces (PKI generation with the ``openssl`` CLI, the command lines,
the token file and the kubeconfig) are separate functions so they can be
checked without the real binaries.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Self

import yaml

from disvc.testing.running import Running
from disvc.testing.serving_tls import ServingTls

ADMIN_USER: Final = "envtest-admin"
"""The user the admin token authenticates as."""

ADMIN_GROUP: Final = "system:masters"
"""Bound to cluster-admin by the API server's bootstrap RBAC policy."""

DEFAULT_SERVICE_CLUSTER_IP_RANGE: Final = "10.0.0.0/24"
"""Where Service clusterIPs come from; the first address is the API server's."""

SERVING_CERT_NAMES: Final = (
    "IP:127.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
)
"""Subject alternative names of the serving certificate: loopback, plus the
in-cluster names a client might use."""

ETCD_BINARY: Final = "etcd"
APISERVER_BINARY: Final = "kube-apiserver"


class EnvtestError(RuntimeError):
    """The control plane could not be started."""


@dataclass(frozen=True, slots=True)
class Binaries:
    """Where the two control-plane executables are."""

    etcd: Path
    kube_apiserver: Path

    @classmethod
    def from_assets(cls, assets_dir: str | Path) -> Binaries:
        """Find both binaries in a ``setup-envtest`` folder, or say which is missing."""
        folder = Path(assets_dir)
        found = {}
        for name in (ETCD_BINARY, APISERVER_BINARY):
            candidate = folder / name
            if not candidate.is_file():
                raise EnvtestError(f"{name} not found in KUBEBUILDER_ASSETS={folder}")
            found[name] = candidate
        return cls(etcd=found[ETCD_BINARY], kube_apiserver=found[APISERVER_BINARY])


@dataclass(frozen=True, slots=True)
class Pki:
    """Files of a fresh certificate authority, the API server's serving pair
    signed by it, and the key pair that signs service-account tokens."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    service_account_public_key: Path


def serving_tls(pki: Pki) -> ServingTls:
    """One CA for both directions, as ``generate_pki`` makes it."""
    return ServingTls(pki.serving_cert, pki.serving_key, pki.ca_cert, pki.ca_cert)


def _openssl(openssl: str, *args: str) -> None:
    try:
        subprocess.run([openssl, *args], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as error:
        raise EnvtestError(f"openssl {args[0]} failed: {error.stderr.strip()}") from error


def generate_pki(directory: Path, openssl: str = "openssl") -> Pki:
    """Write a CA, a serving certificate for loopback and a service-account key pair.

    This drives the ``openssl`` CLI; ``disvc.testing.pki`` makes the same
    kind of certificates with ``cryptography`` (for rotation tests). Keys are EC P-256: quick to make, and accepted by the API
    server both for TLS and for signing service-account tokens (ES256).
    Certificates live one day; the control plane lives one test session.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        service_account_key=directory / "sa.key",
        service_account_public_key=directory / "sa.pub",
    )
    ec_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        openssl, "req", "-x509", *ec_key,
        "-keyout", str(pki.ca_key), "-out", str(pki.ca_cert), "-days", "1",
        "-subj", "/CN=disvc-envtest-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    csr = directory / "apiserver.csr"
    _openssl(
        openssl, "req", "-new", *ec_key,
        "-keyout", str(pki.serving_key), "-out", str(csr), "-subj", "/CN=kube-apiserver",
    )  # fmt: skip
    extensions = directory / "apiserver.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        f"subjectAltName={','.join(SERVING_CERT_NAMES)}\n"
    )
    _openssl(
        openssl, "x509", "-req", "-in", str(csr),
        "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key), "-set_serial",
        str(secrets.randbits(63)), "-days", "1", "-extfile", str(extensions),
        "-out", str(pki.serving_cert),
    )  # fmt: skip
    _openssl(
        openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-out", str(pki.service_account_key),
    )  # fmt: skip
    _openssl(
        openssl, "pkey", "-in", str(pki.service_account_key), "-pubout",
        "-out", str(pki.service_account_public_key),
    )  # fmt: skip
    for private in (pki.ca_key, pki.serving_key, pki.service_account_key):
        private.chmod(0o600)
    return pki


def write_token_file(path: Path, token: str) -> Path:
    """Write the static token file: one admin token in group ``system:masters``.

    The format is the API server's CSV: token, user, uid, quoted groups.
    """
    path.write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"{ADMIN_GROUP}"\n')
    path.chmod(0o600)
    return path


def free_port() -> int:
    """A loopback port nobody listens on right now.

    Neither binary can report the port it bound, so, like envtest, pick one
    by binding port 0 and releasing it. Another process could take it in
    between; start() then fails loudly rather than talking to a stranger.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def etcd_command(binary: Path, data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    """The etcd command line: a single member on loopback, no fsync (data is thrown away)."""
    client_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    return [
        str(binary),
        "--name=envtest",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=envtest={peer_url}",
        "--unsafe-no-fsync=true",
    ]


def apiserver_command(
    binary: Path,
    *,
    etcd_url: str,
    secure_port: int,
    pki: Pki,
    token_file: Path,
    cert_dir: Path,
    service_cluster_ip_range: str = DEFAULT_SERVICE_CLUSTER_IP_RANGE,
    tls: ServingTls | None = None,
) -> list[str]:
    """The kube-apiserver command line for a loopback, RBAC-enforcing API
    server; it serves ``tls`` (default: ``pki``'s CA and serving pair)."""
    tls = tls or serving_tls(pki)
    return [
        str(binary),
        "--advertise-address=127.0.0.1",
        "--bind-address=127.0.0.1",
        f"--secure-port={secure_port}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={tls.cert}",
        f"--tls-private-key-file={tls.key}",
        f"--client-ca-file={tls.client_ca}",
        f"--etcd-servers={etcd_url}",
        f"--token-auth-file={token_file}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer=https://127.0.0.1:{secure_port}/",
        f"--service-account-key-file={pki.service_account_public_key}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--service-cluster-ip-range={service_cluster_ip_range}",
        "--allow-privileged=true",
        # No controller-manager creates service-account tokens, so Pods
        # would be rejected by this admission plugin; envtest drops it too.
        "--disable-admission-plugins=ServiceAccount",
    ]


def kubeconfig(server_url: str, ca_pem: bytes, token: str) -> dict[str, object]:
    """A kubeconfig that trusts the CA and presents the admin bearer token."""
    name = "disvc-envtest"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server_url,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": ADMIN_USER}}],
        "current-context": name,
    }


def _log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


class _Process:
    """One child process whose output goes to a log file in the work dir."""

    def __init__(self, name: str, command: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log_file: IO[bytes] = log.open("wb")
        self.popen = subprocess.Popen(
            command, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def check_running(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise EnvtestError(f"{self.name} exited with {code}:\n{_log_tail(self.log)}")

    def stop(self, grace: float) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log_file.close()


class Environment(Running):
    """etcd plus kube-apiserver on loopback, for one test session.

    ``start()`` returns once ``/readyz`` answers 200 to the admin token;
    ``stop()`` terminates both processes and removes every file this made.
    """

    def __init__(
        self,
        assets_dir: str | Path,
        *,
        startup_timeout: float = 60.0,
        service_cluster_ip_range: str = DEFAULT_SERVICE_CLUSTER_IP_RANGE,
        openssl: str = "openssl",
        tls: ServingTls | None = None,
    ) -> None:
        self.binaries = Binaries.from_assets(assets_dir)
        self.tls = tls
        """What the API server serves; None until start(): the generated PKI's."""
        self.startup_timeout = startup_timeout
        self.service_cluster_ip_range = service_cluster_ip_range
        self.openssl = openssl
        self.token = secrets.token_urlsafe(32)
        self.work_dir: Path | None = None
        self.url = ""
        """``https://127.0.0.1:<port>`` once started."""
        self.kubeconfig = ""
        """Path of the kubeconfig written by start()."""
        self.pki: Pki | None = None
        self.apiserver_args: list[str] = []
        self.etcd_args: list[str] = []
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._restarts = 0

    def start(self) -> Self:
        work_dir = Path(tempfile.mkdtemp(prefix="disvc-envtest-"))
        self.work_dir = work_dir
        try:
            self._start(work_dir)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, work_dir: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        self.pki = generate_pki(work_dir / "pki", self.openssl)
        token_file = write_token_file(work_dir / "tokens.csv", self.token)

        client_port, peer_port, secure_port = free_port(), free_port(), free_port()
        self.etcd_args = etcd_command(self.binaries.etcd, work_dir / "etcd", client_port, peer_port)
        self._etcd = _Process(ETCD_BINARY, self.etcd_args, work_dir / "etcd.log")
        etcd_url = f"http://127.0.0.1:{client_port}"
        self._wait(self._etcd, f"{etcd_url}/health", None, deadline)

        self.tls = self.tls or serving_tls(self.pki)
        self.apiserver_args = apiserver_command(
            self.binaries.kube_apiserver,
            etcd_url=etcd_url,
            secure_port=secure_port,
            pki=self.pki,
            token_file=token_file,
            cert_dir=work_dir / "cert-dir",
            service_cluster_ip_range=self.service_cluster_ip_range,
            tls=self.tls,
        )
        self.url = f"https://127.0.0.1:{secure_port}"
        self._start_apiserver(deadline)

        config = kubeconfig(self.url, self.tls.ca.read_bytes(), self.token)
        path = work_dir / "kubeconfig"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        self.kubeconfig = str(path)

    def _start_apiserver(self, deadline: float) -> None:
        assert self.work_dir is not None and self.tls is not None
        suffix = f"-{self._restarts}" if self._restarts else ""  # each run's log kept apart
        log = self.work_dir / f"kube-apiserver{suffix}.log"
        self._apiserver = _Process(APISERVER_BINARY, self.apiserver_args, log)
        self._wait(self._apiserver, f"{self.url}/readyz", ssl.create_default_context(cafile=str(self.tls.ca)), deadline)

    def restart_apiserver(self, tls: ServingTls | None = None, grace: float = 10.0) -> Self:
        """Stop kube-apiserver and start it again on the same port and etcd
        (every object kept), serving ``tls`` from now on when given; returns
        once it is ready. Connections to the old process end with it.

        The kubeconfig written by start() is not rewritten: its CA is the old
        one. Whoever rotates certificates also rewrites what clients read."""
        if self._apiserver is None:
            raise EnvtestError("restart_apiserver() before start()")
        self._apiserver.stop(grace)
        self._apiserver = None
        if tls is not None:
            self.tls = tls
            flags = {
                "--tls-cert-file": tls.cert, "--tls-private-key-file": tls.key, "--client-ca-file": tls.client_ca,
            }
            self.apiserver_args = [
                f"{flag}={flags[flag]}" if flag in flags else arg
                for arg in self.apiserver_args
                for flag in [arg.partition("=")[0]]
            ]
        self._restarts += 1
        self._start_apiserver(time.monotonic() + self.startup_timeout)
        return self

    def _wait(self, process: _Process, url: str, tls: ssl.SSLContext | None, deadline: float) -> None:
        """Poll a health URL until it answers 200, the process dies, or time runs out."""
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        last_error = "no answer"
        while True:
            process.check_running()
            try:
                with urllib.request.urlopen(request, timeout=2.0, context=tls) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as error:
                last_error = f"HTTP {error.code}: {error.read()[:200]!r}"
            except OSError as error:
                last_error = str(error)
            if time.monotonic() >= deadline:
                raise EnvtestError(f"{process.name} not ready at {url}: {last_error}\n{_log_tail(process.log)}")
            time.sleep(0.1)  # poll interval while the binary boots

    def stop(self, grace: float = 10.0) -> None:
        """Stop the API server before etcd (it would log storage errors otherwise),
        then delete the work dir. Safe to call twice."""
        for process in (self._apiserver, self._etcd):
            if process is not None:
                process.stop(grace)
        self._apiserver = self._etcd = None
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

