"""A real Prometheus scraping the data plane's model-server pods.

In a cluster Prometheus finds predictor pods through Kubernetes service
discovery (``kubernetes_sd_configs`` with role ``pod``) and a relabelling
that keeps the pod's labels (``labelmap`` of ``__meta_kubernetes_pod_label_(.+)``,
which turns ``disvc.group`` into ``disvc_group``). No kubelet runs here, so
the pods live in the ``PodRegistry``: ``Monitoring`` writes them as a
``file_sd_configs`` target list (Prometheus's documented JSON format, which
it re-reads when the file changes) with the same labels (``namespace``,
``pod``, and each pod label with characters outside ``[a-zA-Z0-9_]``
turned into ``_``), and runs Debian's ``prometheus`` binary on it. Every
Ready pod is scraped at ``<pod IP>:8080/metrics``, where a KServe model
server exports ``request_predict_seconds`` and its other histograms.

``Monitoring.binary()`` is None where Prometheus is not installed (tests
skip then, saying so).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Final, Self

from disvc.testing.dataplane.pods import PodRegistry

SCRAPE_INTERVAL: Final = "1s"
METRICS_PORT: Final = 8080
START_TIMEOUT: Final = 30.0
_LABEL_CHARS: Final = re.compile(r"[^a-zA-Z0-9_]")


def binary() -> str | None:
    """The ``prometheus`` executable (``$DISVC_PROMETHEUS`` or on ``PATH``), if any."""
    return os.environ.get("DISVC_PROMETHEUS") or shutil.which("prometheus")


def targets(registry: PodRegistry) -> list[dict[str, object]]:
    """The file_sd target groups for every Ready pod, one group per pod."""
    groups: list[dict[str, object]] = []
    for pod in sorted(registry.all(), key=lambda p: (p.namespace, p.name)):
        if not pod.ready:
            continue
        labels = {_LABEL_CHARS.sub("_", key): value for key, value in pod.labels.items()}
        labels.update(namespace=pod.namespace, pod=pod.name)
        groups.append({"targets": [f"{pod.ip}:{METRICS_PORT}"], "labels": labels})
    return groups


class Monitoring:
    """Prometheus on an ephemeral port, its targets following ``registry``."""

    def __init__(self, registry: PodRegistry, workdir: Path) -> None:
        self.registry = registry
        self.workdir = workdir
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._sync: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        executable = binary()
        if executable is None:
            raise FileNotFoundError("prometheus is not installed (apt-get install prometheus)")
        self._write_targets()
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
                    "scrape_configs": [
                        {
                            "job_name": "model-servers",
                            "scrape_interval": SCRAPE_INTERVAL,
                            "scrape_timeout": SCRAPE_INTERVAL,
                            "file_sd_configs": [{"files": [str(self.workdir / "targets.json")]}],
                        }
                    ],
                }
            )
        )
        log = (self.workdir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                executable,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        self._sync = threading.Thread(target=self._follow, name="prometheus-targets", daemon=True)
        self._sync.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: see {self.workdir / 'prometheus.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready within {START_TIMEOUT}s")

    def _follow(self) -> None:
        version = 0
        while not self._stop.is_set():
            version = self.registry.wait_for_change(version, timeout=0.5)
            self._write_targets()

    def _write_targets(self) -> None:
        path = self.workdir / "targets.json"
        text = json.dumps(targets(self.registry), indent=1)
        if path.exists() and path.read_text() == text:
            return
        # written whole, then renamed: Prometheus must never read half a file
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(path)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
