"""Fixtures that run the real controller beside integration tests.

``controller`` starts ``Manager(options).run(stop)`` on a thread against the
``kube`` fixture's API, scoped to the test's namespace, with ephemeral ports
for metrics and probes, and waits until its caches have synced.
``start_controller(**option_overrides)`` starts more (restarts, leader
election, other flags); every controller a test started is stopped after it.
``kserve`` plays KServe's part (every ISVC becomes Ready); ``cluster`` reads
and edits objects as a kubectl user would. The classes live in ``harness.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from disvc.controller.kube import Kube, load_api_client
from disvc.controller.manager import Manager
from disvc.controller.options import BindAddress, Options
from disvc.testing.fixtures import KubeEnv
from disvc.testing.kserve_stub import KServeStub

from .harness import STARTUP_TIMEOUT, Cluster, RunningController, StartController


def controller_options(kube: KubeEnv, **overrides: Any) -> Options:
    """Options for a controller of this test's namespace with ephemeral ports."""
    base = Options(
        kubeconfig=kube.kubeconfig,
        namespace=kube.namespace,
        workers=2,
        metrics_bind_address=BindAddress("127.0.0.1", 0),
        health_probe_bind_address=BindAddress("127.0.0.1", 0),
        resync_period=0.0,
        graceful_shutdown_timeout=10.0,
        log_format="json",
        log_level="debug",
    )
    return replace(base, **overrides)


@pytest.fixture
def start_controller(kube: KubeEnv) -> Iterator[StartController]:
    """``start_controller(**option_overrides)`` -> a running, synced controller."""
    running: list[RunningController] = []

    def start(wait_ready: bool = True, **overrides: Any) -> RunningController:
        controller = RunningController(Manager(controller_options(kube, **overrides))).start()
        running.append(controller)
        if wait_ready:
            assert controller.manager.wait_until_ready(STARTUP_TIMEOUT), "caches never synced"
        return controller

    yield start
    for controller in reversed(running):
        controller.stop()


@pytest.fixture
def controller(start_controller: StartController) -> RunningController:
    """The controller under test, running against ``kube`` in this test's namespace."""
    return start_controller()


@pytest.fixture
def kserve(kube: KubeEnv) -> Iterator[KServeStub]:
    """KServe's part: marks every ISVC in the test namespace Ready."""
    stub = KServeStub(kube.api_client, mode="ready", namespace=kube.namespace).start()
    yield stub
    stub.stop()


@pytest.fixture
def cluster(kube: KubeEnv) -> Cluster:
    """The test namespace as a kubectl user sees it."""
    return Cluster(kube)


@pytest.fixture
def api(kube: KubeEnv) -> Iterator[Kube]:
    """The controller's own API client against the test's API."""
    client = load_api_client(kube.kubeconfig)
    try:
        yield Kube(client)
    finally:
        client.close()  # type: ignore[no-untyped-call]
