"""Half-open watches (issue 23): the controller reaches the API server through
a TCP proxy that, on command, black-holes every connection it holds (kept
open, nothing forwarded). A child deleted and a spec changed meanwhile,
straight against the API server, must still be reconciled: the silent
watches are taken for dead after ``--watch-idle-timeout`` and resumed on
new connections. Before the fix the watches sat on the black hole until
their read timeout, five to ten minutes later."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub
from disvc.testing.tcpproxy import TcpProxy

from .harness import POC1, Cluster, StartController

Obj = dict[str, Any]

IDLE_LIMIT = 3.0
"""Well above the loopback API's bookmark interval (1 s); a real server's
healthy watches (a bookmark a minute) are resumed every few seconds instead,
which costs this test nothing."""
CONVERGE_TIMEOUT = 120.0
"""Generous: shared cores. The watches' own read timeout (330 s or more) is
far past it, so without the idle limit the test fails."""
NAME = "quiet"


def through_proxy(kubeconfig: str, port: int, path: Path) -> str:
    """A copy of ``kubeconfig`` whose clusters are reached at 127.0.0.1:``port``,
    TLS still checked against the server's own name."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    for entry in config["clusters"]:
        cluster = entry["cluster"]
        parts = urlsplit(cluster["server"])
        if parts.hostname != "127.0.0.1" and parts.scheme == "https":
            cluster.setdefault("tls-server-name", parts.hostname)
        cluster["server"] = urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))
    path.write_text(yaml.safe_dump(config))
    return str(path)


def upstream(kubeconfig: str) -> tuple[str, int]:
    """The API server's host and port, from the kubeconfig's current context."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
    server = next(c["cluster"]["server"] for c in config["clusters"] if c["name"] == context["cluster"])
    parts = urlsplit(server)
    assert parts.hostname is not None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def disvc(replicas: int) -> Obj:
    doc: Obj = yaml.safe_load(POC1.read_text())
    doc["metadata"]["name"] = NAME
    doc["spec"]["replicas"] = replicas
    doc["spec"]["annotations"] = {"version": "v1"}
    return doc


def converged(cluster: Cluster, replicas: int) -> None:
    assert sorted(cluster.isvcs()) == [f"{NAME}-v1-{i}" for i in range(replicas)]
    status = cluster.disvc(NAME).get("status") or {}
    assert (status.get("replicas"), status.get("readyReplicas")) == (replicas, replicas), status


def test_changes_made_while_the_watches_are_black_holed_are_reconciled(
    kube: KubeEnv, cluster: Cluster, kserve: KServeStub, start_controller: StartController, tmp_path: Path
) -> None:
    with TcpProxy(*upstream(kube.kubeconfig)) as proxy:
        start_controller(
            kubeconfig=through_proxy(kube.kubeconfig, proxy.port, tmp_path / "kubeconfig"),
            watch_idle_timeout=IDLE_LIMIT,
        )
        kube.apply_yaml(yaml.safe_dump(disvc(2)))
        eventually(lambda: converged(cluster, 2), timeout=CONVERGE_TIMEOUT)

        held = proxy.blackhole()
        assert held >= 4, "the watches of DISVCs, ISVCs, Services and Ingresses go through the proxy"
        dialled = proxy.accepted
        # Straight to the API server: the controller hears of these only through its watches.
        cluster.raw("DELETE", cluster.isvcs_path(f"{NAME}-v1-1"))
        cluster.merge_patch_disvc(NAME, {"spec": {"replicas": 3}})

        eventually(lambda: converged(cluster, 3), timeout=CONVERGE_TIMEOUT)
        assert proxy.accepted > dialled, "the controller caught up over new connections"
