"""The serving certificate of the secure ``/metrics`` endpoint.

``CertificateSource`` hands out the ``ssl.SSLContext`` each new connection
is served with. Its certificate comes from a directory holding ``tls.crt``
and ``tls.key``, the keys of a ``kubernetes.io/tls`` Secret, so a Secret
that cert-manager issues can be mounted as it is. The files are looked at
again (one ``stat`` each) whenever a connection arrives: a renewed Secret,
which the kubelet swaps in behind a symlink, is served from the next
connection on, without a restart, as controller-runtime's ``certwatcher``
does.

Until such files exist (no directory given, or an optional Secret not
created yet) the source serves a self-signed certificate made at start,
and says so in the log. Scrapers then have to skip verification or be
given the certificate; the files win as soon as they appear.

The certificate is made with the ``cryptography`` package: the stdlib
``ssl`` module can serve a certificate but not create one, and an image
built from ``python:*-slim`` has no ``openssl`` binary to shell out to.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

log = structlog.get_logger(__name__)

CERT_FILE: Final = "tls.crt"
KEY_FILE: Final = "tls.key"
SELF_SIGNED_VALIDITY: Final = datetime.timedelta(days=365)
"""A self-signed certificate is trusted by nobody anyway; it only has to
outlive the process, and a pod rarely lives a year."""


@dataclass(frozen=True, slots=True)
class _FileState:
    """What identifies one version of the pair on disk: a rewrite or a
    symlink swap changes at least one of these."""

    cert: tuple[int, int, int]
    key: tuple[int, int, int]


def _stat(path: Path) -> tuple[int, int, int]:
    info = path.stat()  # follows the kubelet's ..data symlink to the real file
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving the given PEM pair."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


def self_signed_pem(hostnames: list[str], now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """A fresh EC P-256 key and a self-signed certificate for ``hostnames``
    (plus the loopback addresses), both PEM: (certificate, key)."""
    # Imported here: cryptography adds about 8 MiB to the process, needed
    # only when no certificate is mounted for --metrics-secure.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dict.fromkeys(hostnames) if name]
    names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else "localhost")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate a scraper's clock skew
        .not_valid_after(now + SELF_SIGNED_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _context_from_pem(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    # ssl loads certificates from files only. The files live for the length
    # of one load, in a private directory (the Deployment mounts /tmp).
    with tempfile.TemporaryDirectory(prefix="disvc-metrics-tls-") as directory:
        cert_file, key_file = Path(directory, CERT_FILE), Path(directory, KEY_FILE)
        cert_file.write_bytes(cert_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key_pem)
        return server_context(cert_file, key_file)


def default_hostnames() -> list[str]:
    """Names a self-signed certificate is made for: the pod's hostname and localhost."""
    return [name for name in (socket.gethostname(), "localhost") if name]


class CertificateSource:
    """The TLS context to serve the next connection with; thread-safe."""

    def __init__(self, cert_dir: str | os.PathLike[str] | None, hostnames: list[str] | None = None) -> None:
        self._dir = Path(cert_dir) if cert_dir else None
        self._hostnames = hostnames if hostnames is not None else default_hostnames()
        self._lock = threading.Lock()
        self._state: _FileState | None = None
        self._broken: _FileState | None = None
        """Files that failed to load, so they are not retried (and logged) per connection."""
        self._context: ssl.SSLContext | None = None
        self._self_signed: ssl.SSLContext | None = None

    @property
    def cert_file(self) -> Path | None:
        return self._dir / CERT_FILE if self._dir else None

    @property
    def key_file(self) -> Path | None:
        return self._dir / KEY_FILE if self._dir else None

    def context(self) -> ssl.SSLContext:
        """The mounted pair when present (reloaded after a change), else the self-signed one."""
        with self._lock:
            state = self._file_state()
            if state is None:
                return self._fallback()
            if state == self._broken:
                return self._context or self._fallback()
            if state != self._state or self._context is None:
                assert self.cert_file is not None and self.key_file is not None
                try:
                    context = server_context(self.cert_file, self.key_file)
                except (ssl.SSLError, OSError) as error:
                    # Mid-rotation (new cert, old key) or a broken Secret:
                    # keep serving what worked until the pair is whole again.
                    log.warning("Cannot load the metrics certificate", directory=str(self._dir), error=str(error))
                    self._broken = state
                    return self._context or self._fallback()
                log.info(
                    "Loaded the metrics certificate" if self._state is None else "Reloaded the metrics certificate",
                    directory=str(self._dir),
                )
                self._state, self._context = state, context
            return self._context

    def _file_state(self) -> _FileState | None:
        if self.cert_file is None or self.key_file is None:
            return None
        try:
            return _FileState(_stat(self.cert_file), _stat(self.key_file))
        except OSError:
            return None

    def _fallback(self) -> ssl.SSLContext:
        if self._context is not None:
            return self._context  # the files went away: keep the last good pair
        if self._self_signed is None:
            cert_pem, key_pem = self_signed_pem(self._hostnames)
            self._self_signed = _context_from_pem(cert_pem, key_pem)
            log.info(
                "Serving metrics with a self-signed certificate",
                reason="no tls.crt and tls.key in the certificate directory" if self._dir else "no --metrics-cert-dir",
                directory=str(self._dir) if self._dir else None,
                hostnames=self._hostnames,
            )
        return self._self_signed
