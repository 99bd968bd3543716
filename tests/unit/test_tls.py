"""The metrics endpoint's certificate: mounted files when present, reloaded
on change, else self-signed; checked by a real TLS handshake over a socket pair."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from disvc.controller import tls


def served_certificate(context: ssl.SSLContext) -> x509.Certificate:
    """The certificate a client sees when a server uses ``context``."""
    server_end, client_end = socket.socketpair()
    client_context = ssl.create_default_context()
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    server = threading.Thread(target=lambda: _serve_one(context, server_end), daemon=True)
    server.start()
    with client_context.wrap_socket(client_end) as client:
        der = client.getpeercert(binary_form=True)
    server.join(5)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _serve_one(context: ssl.SSLContext, end: socket.socket) -> None:
    try:
        with context.wrap_socket(end, server_side=True) as wrapped:
            wrapped.recv(1)
    except (OSError, ssl.SSLError):
        pass  # the client hangs up after the handshake


def names(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def write_pair(directory: Path, hostname: str) -> None:
    cert_pem, key_pem = tls.self_signed_pem([hostname])
    (directory / tls.CERT_FILE).write_bytes(cert_pem)
    (directory / tls.KEY_FILE).write_bytes(key_pem)


def test_without_a_directory_it_serves_a_self_signed_certificate_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = tls.CertificateSource(None, hostnames=["disvc-controller-manager-abc"])
    with caplog.at_level(logging.INFO):
        certificate = served_certificate(source.context())
    assert certificate.issuer == certificate.subject
    assert names(certificate) == ["disvc-controller-manager-abc"]
    assert "self-signed" in caplog.text
    assert source.context() is source.context(), "made once, at start"


def test_files_in_the_directory_win_and_a_change_is_served_from_the_next_connection(tmp_path: Path) -> None:
    write_pair(tmp_path, "first.example")
    source = tls.CertificateSource(tmp_path)
    assert names(served_certificate(source.context())) == ["first.example"]

    write_pair(tmp_path, "second.example-longer-name")
    assert names(served_certificate(source.context())) == ["second.example-longer-name"]


def test_a_half_written_pair_keeps_the_last_good_certificate(tmp_path: Path) -> None:
    write_pair(tmp_path, "good.example")
    source = tls.CertificateSource(tmp_path)
    source.context()
    (tmp_path / tls.KEY_FILE).write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n")

    assert names(served_certificate(source.context())) == ["good.example"]


def test_a_self_signed_key_is_never_left_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    tls.CertificateSource(None).context()
    assert os.listdir(tmp_path) == []
