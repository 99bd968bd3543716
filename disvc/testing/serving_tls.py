"""The TLS files a test API server serves with: its certificate and key,
the CA that signed them (what clients must trust) and the CA bundle client
certificates must chain to (kube-apiserver's ``--client-ca-file``).

``envtest`` passes them to kube-apiserver as flags; the loopback API
(``disvc.testing.apiserver``) builds its ``ssl`` context from them with
``server_context``. A rotation hands either server a new ``ServingTls``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ServingTls:
    cert: Path
    key: Path
    ca: Path
    """The CA that signed ``cert``."""
    client_ca: Path
    """Client certificates are accepted when they chain to one of these."""

    def server_context(self) -> ssl.SSLContext:
        """A server context that asks every client for a certificate and
        checks one that is given against ``client_ca``.

        Unlike kube-apiserver, which completes the handshake and answers 401
        to a certificate it does not trust, ``ssl`` can only refuse such a
        certificate during the handshake; either way the client is not let
        in. A client without a certificate is let through, as to
        kube-apiserver, where other credentials (a token) may follow."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        context.load_verify_locations(cafile=self.client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
        return context
