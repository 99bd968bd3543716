"""Connection settings: where they come from, and the connections made from them.

Found as kubectl and controller-runtime find them (controller-runtime's
``pkg/client/config``, ``loadConfig``), first match wins:

1. ``--kubeconfig PATH``;
2. ``$KUBECONFIG``: a list of files separated by ``os.pathsep``, merged (the
   first file to set a value wins; missing files are skipped);
3. the pod's service account, when ``KUBERNETES_SERVICE_HOST`` is set;
4. ``~/.kube/config``.

``--context`` picks a context of the kubeconfig instead of its current one.
The ``kubernetes`` package reads and merges the files and runs credential
plugins (``exec``, token refresh); ``transport.Connections`` carries every
request. A server URL that cannot be used (no scheme, not http(s), a port
that is not a number) is a setup mistake: ``ConfigError`` names the
kubeconfig, the context and the URL in one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import structlog
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from disvc.controller import errors
from disvc.controller.kube import transport

KUBECONFIG_ENV: Final = "KUBECONFIG"
IN_CLUSTER_ENV: Final = "KUBERNETES_SERVICE_HOST"
HOME_KUBECONFIG: Final = Path("~/.kube/config")

log = structlog.get_logger(__name__)

SourceKind = Literal["--kubeconfig", "$KUBECONFIG", "in-cluster", "~/.kube/config"]


@dataclass(frozen=True, slots=True)
class Source:
    """Where the connection settings were found."""

    kind: SourceKind
    kubeconfig: str | None
    """The file(s) read; None for the in-cluster service account."""
    context: str | None
    """The context asked for (``--context``); None: the kubeconfig's current one."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Loaded settings: the ``kubernetes`` package's configuration and what
    the start-up log line and errors name."""

    configuration: k8s_client.Configuration
    source: Source
    context: str | None
    """The context used (None in-cluster)."""

    @property
    def server(self) -> str:
        return str(self.configuration.host)


def find(
    kubeconfig: str | None, context: str | None = None,
    environ: Mapping[str, str] | None = None, home: Path | None = None,
) -> Source:
    """Which settings to load, by the order in the module docstring."""
    env = os.environ if environ is None else environ
    if kubeconfig:
        return Source("--kubeconfig", kubeconfig, context)
    if env.get(KUBECONFIG_ENV):
        return Source("$KUBECONFIG", env[KUBECONFIG_ENV], context)
    if env.get(IN_CLUSTER_ENV):
        return Source("in-cluster", None, context)
    path = (home / ".kube" / "config") if home is not None else HOME_KUBECONFIG.expanduser()
    return Source("~/.kube/config", str(path), context)


def load(source: Source) -> Settings:
    """The settings ``source`` names; ``ConfigError`` (one line) when they are unusable."""
    configuration = k8s_client.Configuration()
    where = f"kubeconfig {source.kubeconfig} ({source.kind})" if source.kubeconfig else "the in-cluster service account"
    context = source.context
    try:
        if source.kubeconfig is None:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            if context is None:
                _, current = k8s_config.list_kube_config_contexts(config_file=source.kubeconfig)  # type: ignore[no-untyped-call]
                context = (current or {}).get("name")
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=source.kubeconfig, context=source.context, client_configuration=configuration,
                persist_config=False,
            )
    except Exception as error:
        # Loading only reads and parses files (YAML, base64, URLs): whatever
        # it raises means the settings are unusable, a setup mistake to name
        # in one line rather than a crash with a traceback.
        in_context = f", context {context}" if context else ""
        raise errors.ConfigError(f"cannot load Kubernetes connection settings from {where}{in_context}: {error}") from error
    settings = Settings(configuration, source, context)
    problem = _url_problem(settings.server) or _proxy_problem(getattr(configuration, "proxy", None))
    if problem:
        raise errors.ConfigError(
            f"{where}, context {context or '(in-cluster)'}: unusable server URL {settings.server!r}: {problem}"
        )
    return settings


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "the scheme must be https or http"
    if not parts.hostname:
        return "no host"
    return None


def _proxy_problem(proxy: str | None) -> str | None:
    if proxy and urlsplit(proxy).scheme != "http":
        return f"proxy-url {proxy!r}: only http:// proxies (HTTP CONNECT) are supported"
    return None


def load_api_client(kubeconfig: str | None, context: str | None = None) -> k8s_client.ApiClient:
    """An ApiClient from the settings found for ``kubeconfig`` and ``context``
    (see ``find``); logs where they came from."""
    settings = load(find(kubeconfig, context))
    log.info(
        "Loaded connection settings", source=settings.source.kind, kubeconfig=settings.source.kubeconfig,
        context=settings.context, server=settings.server,
    )
    return k8s_client.ApiClient(settings.configuration)


def connections(configuration: k8s_client.Configuration) -> transport.Connections:
    """Kept-alive connections with the configuration's TLS settings and proxy."""
    assert_hostname = getattr(configuration, "assert_hostname", None)
    tls = transport.TlsSettings(
        verify=bool(configuration.verify_ssl),
        ca_file=configuration.ssl_ca_cert,
        ca_data=getattr(configuration, "ca_cert_data", None),
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        server_hostname=getattr(configuration, "tls_server_name", None)
        or (assert_hostname if isinstance(assert_hostname, str) else None),
        check_hostname=assert_hostname is not False,
    )
    return transport.Connections(str(configuration.host), tls, proxy=getattr(configuration, "proxy", None) or None)
