"""Command-line flags of the controller, parsed once into a frozen ``Options``.

The flag names follow controller-runtime's scaffolded manager
(``--metrics-bind-address``, ``--health-probe-bind-address``,
``--leader-elect``) so a Deployment written for a kubebuilder controller
reads the same here. ``manager.py`` consumes ``Options``; nothing else parses
``sys.argv``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

from disvc import version

LogFormat: TypeAlias = Literal["json", "console"]
LogLevel: TypeAlias = Literal["debug", "info", "warning", "error"]

DEFAULT_RESYNC_PERIOD: Final = 10 * 60 * 60.0
"""Ten hours, controller-runtime's ``SyncPeriod`` default: a rare safety net that
re-reconciles every DISVC even if a watch event was lost. 0 turns it off."""

DEFAULT_WATCH_IDLE_TIMEOUT: Final = 150.0
"""Seconds a watch may receive nothing before it is taken for dead and resumed.

Why 150: kube-apiserver's watch cache sends each watcher that allows
bookmarks one a minute (``defaultBookmarkFrequency`` in the apiserver's
``storage/cacher/cacher.go``; ``nextBookmarkTime`` in ``cache_watcher.go``
also sends one 2 s before the watch's deadline), from a timer ticking about
every second, so on a healthy watch no more than about 62 s pass without a
byte. A bookmark the watcher has no room for is skipped until the next
round, but then events are flowing anyway. 150 s is two and a half rounds:
a watch survives one lost bookmark with room to spare, and a dead one is
found within 150 s instead of the 330-630 s its read timeout allowed.

A quiet watch can still reach it: the watch cache sends no bookmark for a
resource until it has seen an event or an etcd progress notification for it
since the API server started (etcd's default notification interval is ten
minutes; kubeadm sets five seconds), and a server without the watch cache
sends none. Such a watch is then resumed from its resourceVersion every
150 s instead of every 300-600 s: the same request the server timeout
makes, a little more often."""

DISABLED: Final = "0"
"""A bind address of ``0`` turns the server off (controller-runtime's convention)."""


@dataclass(frozen=True, slots=True)
class BindAddress:
    """Where an HTTP server listens; ``port`` 0 asks the kernel for a free port."""

    host: str
    """Interface to listen on; empty means every interface."""
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Options:
    """Everything the manager needs from the command line."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; None: ``$KUBECONFIG``, the in-cluster service
    account, then ``~/.kube/config`` (``kube.auth.find``)."""
    context: str | None = None
    """Kubeconfig context to use; None: its current context."""
    namespace: str | None = None
    """Watch and reconcile only this namespace; None means every namespace."""
    ingress_domain: str = "example.com"
    """Ingress hosts are ``<name>-<namespace>.<ingress_domain>``."""
    ingress_class: str | None = None
    """Ingress class for DISVCs that name none (None: the cluster default)."""
    default_deployment_mode: Literal["Standard", "Knative"] | None = None
    """KServe deployment mode for DISVCs without a ``serving.kserve.io/deploymentMode``
    annotation, stamped on their ISVCs; None leaves it to KServe's ConfigMap."""
    gateway_api: bool = True
    """Use Gateway API where its CRDs are installed (found and followed at
    run time, ``gateway_api.py``); False never looks for them."""
    default_gateway: str | None = None
    """``NAMESPACE/NAME`` of the Gateway for DISVCs that name none (and ask
    for no Ingress class); None: those get an Ingress."""
    workers: int = 4
    """How many DISVCs are reconciled at once (one key is never on two workers)."""
    metrics_bind_address: BindAddress | None = BindAddress("", 8080)
    """Prometheus ``/metrics``; None when disabled."""
    health_probe_bind_address: BindAddress | None = BindAddress("", 8081)
    """``/healthz`` and ``/readyz``; None when disabled."""
    metrics_secure: bool = False
    """Serve ``/metrics`` over HTTPS to bearer tokens RBAC allows ``get /metrics``.
    Off for local runs (plain ``curl``); the Deployment turns it on."""
    metrics_cert_dir: str | None = None
    """Directory with ``tls.crt``/``tls.key`` for the secure endpoint; None (or
    files not there yet): a self-signed certificate."""
    leader_elect: bool = False
    """Reconcile only while holding a Lease, so replicas can stand by."""
    leader_election_namespace: str | None = None
    """Namespace of the Lease; None: the pod's namespace, else ``default``."""
    leader_election_id: str = "disvc-controller-leader"
    """Name of the Lease."""
    lease_duration: float = 15.0
    """Seconds a standby waits after the last renewal before taking the Lease."""
    renew_deadline: float = 10.0
    """Seconds the leader keeps trying to renew before it gives up leading."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew the Lease."""
    resync_period: float = DEFAULT_RESYNC_PERIOD
    """Seconds between full re-reconciles of every cached DISVC; 0 disables."""
    watch_idle_timeout: float = DEFAULT_WATCH_IDLE_TIMEOUT
    """Seconds a watch may receive nothing (no event, no bookmark, no byte)
    before it is closed and resumed from its last resourceVersion."""
    graceful_shutdown_timeout: float = 10.0
    """Seconds to let in-flight reconciles finish after a stop signal."""
    log_format: LogFormat = "json"
    log_level: LogLevel = "info"
    prometheus_url: str | None = None
    """Prometheus-compatible query API measuring canary analyses; None: none
    (a canary with ``spec.rollout.analysis`` then pauses and says why)."""
    prometheus_bearer_token_file: str | None = None
    """File holding a bearer token for it (read on every query: tokens rotate)."""
    prometheus_ca_file: str | None = None
    """CA bundle verifying its certificate, for an https URL signed privately."""


DEFAULTS: Final = Options()

_DEPLOYMENT_MODES: Final[dict[str, Literal["Standard", "Knative"]]] = {
    "Standard": "Standard",
    "RawDeployment": "Standard",
    "Knative": "Knative",
    "Serverless": "Knative",
}
"""KServe's mode names, current and before v0.16, with the mode each means."""
"""Every default, stated once (in the fields above): the flags show and use these."""


def parse_bind_address(value: str) -> BindAddress | None:
    """``:8080`` / ``127.0.0.1:0`` / ``8080`` -> BindAddress; ``0`` -> None (disabled)."""
    if value == DISABLED:
        return None
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    host = host.strip("[]")  # an IPv6 literal is written [::1]:8080
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a bind address (host:port, :port or 0): {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in bind address {value!r}")
    return BindAddress(host, port)


def _flag(address: BindAddress | None) -> str:
    """How a bind address is written on the command line."""
    return DISABLED if address is None else str(address)


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not true or false: {value!r}")


def _gateway(value: str) -> str:
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"not NAMESPACE/NAME: {value!r}")
    return value


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return number


def _non_negative_seconds(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return number


def _positive_seconds(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def _default_log_format() -> LogFormat:
    # A person at a terminal wants to read lines; a log pipeline wants JSON.
    return "console" if sys.stderr.isatty() else "json"


def parser() -> argparse.ArgumentParser:
    """The argument parser (separate from ``parse`` so docs can print its help)."""
    p = argparse.ArgumentParser(
        prog="disvc-controller",
        description=(
            "Reconcile KServe DistributedInferenceServices into InferenceServices, "
            "Services and an Ingress."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--version", action="version", version=version.line("disvc-controller"))
    p.add_argument(
        "--kubeconfig",
        default=None,
        help="Path to a kubeconfig file. When omitted: $KUBECONFIG (a list of files, merged), "
        "else the in-cluster service account, else ~/.kube/config.",
    )
    p.add_argument(
        "--context",
        default=None,
        help="The kubeconfig context to use. When omitted, its current context.",
    )
    p.add_argument(
        "--namespace",
        default=None,
        help="Watch only this namespace. When omitted, watch every namespace.",
    )
    p.add_argument(
        "--ingress-domain",
        default=DEFAULTS.ingress_domain,
        help="Domain of Ingress hosts: each DISVC is served at <name>-<namespace>.<domain>.",
    )
    p.add_argument(
        "--ingress-class",
        default=None,
        help="IngressClass for DISVCs that do not set spec.ingress.className. "
        "When omitted, the cluster's default class is used.",
    )
    p.add_argument(
        "--default-deployment-mode",
        default=None,
        choices=sorted(_DEPLOYMENT_MODES),
        help="KServe deployment mode for DISVCs without a serving.kserve.io/deploymentMode "
        "annotation (Standard or Knative; RawDeployment and Serverless are their old names). "
        "It is stamped on their InferenceServices. When omitted, KServe's own default applies "
        "and the Services follow the mode the InferenceServices report.",
    )
    p.add_argument(
        "--gateway-api",
        type=_boolean,
        nargs="?",
        const=True,
        default=DEFAULTS.gateway_api,
        help="Route DISVCs through Gateway API (HTTPRoute, GRPCRoute) where its CRDs are installed; "
        "the controller finds them, and notices them appear or go, without a restart. "
        "'--gateway-api=false' never looks for them. A bare --gateway-api (once needed to turn it on) "
        "is accepted and changes nothing.",
    )
    p.add_argument(
        "--default-gateway",
        type=_gateway,
        default=None,
        help="NAMESPACE/NAME of the Gateway that DISVCs naming no spec.ingress.gateway (and no "
        "spec.ingress.className) route through, where Gateway API is installed. When omitted they "
        "get an Ingress.",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=DEFAULTS.workers,
        help="How many DISVCs are reconciled concurrently.",
    )
    p.add_argument(
        "--metrics-bind-address",
        type=parse_bind_address,
        default=_flag(DEFAULTS.metrics_bind_address),
        help="Address ([host]:port) serving Prometheus metrics at /metrics; '0' disables it.",
    )
    p.add_argument(
        "--metrics-secure",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.metrics_secure,
        help="Serve metrics over HTTPS, only to bearer tokens that a TokenReview accepts and a "
        "SubjectAccessReview allows to 'get' the non-resource URL /metrics. Off by default for "
        "local runs; the manifests in config/manager turn it on.",
    )
    p.add_argument(
        "--metrics-cert-dir",
        default=None,
        help="Directory holding tls.crt and tls.key (a mounted kubernetes.io/tls Secret) for "
        "--metrics-secure; reloaded when they change. Without it, or until the files exist, "
        "a self-signed certificate made at start.",
    )
    p.add_argument(
        "--health-probe-bind-address",
        type=parse_bind_address,
        default=_flag(DEFAULTS.health_probe_bind_address),
        help="Address ([host]:port) serving /healthz (alive) and /readyz "
        "(caches synced); '0' disables it.",
    )
    p.add_argument(
        "--leader-elect",
        action="store_true",
        help="Reconcile only while holding a coordination.k8s.io Lease, so that "
        "several replicas can run with one active.",
    )
    p.add_argument(
        "--leader-election-namespace",
        default=None,
        help="Namespace of the leader-election Lease. When omitted, the pod's own "
        "namespace (from the service account), else 'default'.",
    )
    p.add_argument(
        "--leader-election-id",
        default=DEFAULTS.leader_election_id,
        help="Name of the leader-election Lease.",
    )
    p.add_argument(
        "--leader-election-lease-duration",
        dest="lease_duration",
        type=_positive_seconds,
        default=DEFAULTS.lease_duration,
        help="Seconds a standby replica waits after the leader's last renewal before taking over.",
    )
    p.add_argument(
        "--leader-election-renew-deadline",
        dest="renew_deadline",
        type=_positive_seconds,
        default=DEFAULTS.renew_deadline,
        help="Seconds the leader keeps retrying to renew before it stops reconciling.",
    )
    p.add_argument(
        "--leader-election-retry-period",
        dest="retry_period",
        type=_positive_seconds,
        default=DEFAULTS.retry_period,
        help="Seconds between attempts to acquire or renew the Lease.",
    )
    p.add_argument(
        "--resync-period",
        type=_non_negative_seconds,
        default=DEFAULTS.resync_period,
        help="Seconds between full re-reconciles of every DISVC, a safety net "
        "against lost watch events (controller-runtime's 10h default); 0 disables it. "
        "A converged resync makes no writes.",
    )
    p.add_argument(
        "--watch-idle-timeout",
        type=_positive_seconds,
        default=DEFAULTS.watch_idle_timeout,
        help="Seconds a watch may receive nothing, not even a bookmark (kube-apiserver sends one a "
        "minute), before it is taken for dead and resumed from its last resourceVersion on a new "
        "connection: a proxy or load balancer that keeps a connection up but forwards nothing "
        "would otherwise leave the cache stale until the watch's own timeout (5-10 minutes).",
    )
    p.add_argument(
        "--graceful-shutdown-timeout",
        type=_non_negative_seconds,
        default=DEFAULTS.graceful_shutdown_timeout,
        help="Seconds to let in-flight reconciles finish after SIGTERM before exiting.",
    )
    p.add_argument(
        "--log-format",
        choices=get_args(LogFormat),
        default=None,
        help="'json' (one object per line) or 'console' (readable). "
        "Default: console when stderr is a terminal, else json.",
    )
    p.add_argument(
        "--log-level",
        choices=get_args(LogLevel),
        default=DEFAULTS.log_level,
        help="Least severe level to log; 'debug' also logs reconciles that changed nothing.",
    )
    p.add_argument(
        "--prometheus-url",
        default=None,
        help="Base URL of a Prometheus-compatible query API (Prometheus, Thanos, Mimir, "
        "VictoriaMetrics) that measures canaries with spec.rollout.analysis, e.g. "
        "http://prometheus.monitoring:9090.",
    )
    p.add_argument(
        "--prometheus-bearer-token-file",
        default=None,
        help="File holding a bearer token sent to --prometheus-url (re-read for every query).",
    )
    p.add_argument(
        "--prometheus-ca-file",
        default=None,
        help="CA bundle (PEM) that verifies --prometheus-url's certificate.",
    )
    return p


def parse(argv: Sequence[str] | None = None) -> Options:
    """Parse ``argv`` (``sys.argv[1:]`` when None); exits with usage on bad flags."""
    ns = parser().parse_args(argv)
    if ns.renew_deadline >= ns.lease_duration:
        parser().error("--leader-election-renew-deadline must be shorter than --leader-election-lease-duration")
    if ns.retry_period >= ns.renew_deadline:
        parser().error("--leader-election-retry-period must be shorter than --leader-election-renew-deadline")
    log_format: LogFormat = ns.log_format if ns.log_format is not None else _default_log_format()
    return Options(
        kubeconfig=ns.kubeconfig,
        context=ns.context or None,
        namespace=ns.namespace or None,
        ingress_domain=ns.ingress_domain,
        ingress_class=ns.ingress_class or None,
        default_deployment_mode=_DEPLOYMENT_MODES.get(ns.default_deployment_mode or ""),
        gateway_api=ns.gateway_api,
        default_gateway=ns.default_gateway,
        workers=ns.workers,
        metrics_bind_address=ns.metrics_bind_address,
        health_probe_bind_address=ns.health_probe_bind_address,
        metrics_secure=ns.metrics_secure,
        metrics_cert_dir=ns.metrics_cert_dir or None,
        leader_elect=ns.leader_elect,
        leader_election_namespace=ns.leader_election_namespace or None,
        leader_election_id=ns.leader_election_id,
        lease_duration=ns.lease_duration,
        renew_deadline=ns.renew_deadline,
        retry_period=ns.retry_period,
        resync_period=ns.resync_period,
        watch_idle_timeout=ns.watch_idle_timeout,
        graceful_shutdown_timeout=ns.graceful_shutdown_timeout,
        log_format=log_format,
        log_level=ns.log_level,
        prometheus_url=ns.prometheus_url or None,
        prometheus_bearer_token_file=ns.prometheus_bearer_token_file or None,
        prometheus_ca_file=ns.prometheus_ca_file or None,
    )
