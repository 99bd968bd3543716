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

import re
import secrets
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Final

import pytest
from kubernetes import client

from disvc.controller.manager import Manager
from disvc.controller.options import BindAddress, Options
from disvc.testing.fixtures import KubeEnv
from disvc.testing.kserve_stub import KServeStub

from .harness import STARTUP_TIMEOUT, Cluster, RunningController, StartController

SHORT_NAMESPACE_SLUG: Final = 20
CONTROLLER_TESTS: Final = "test_controller_"


@pytest.fixture
def kube(kube: KubeEnv, request: pytest.FixtureRequest) -> Iterator[KubeEnv]:
    """For the controller tests, the plugin's ``kube`` in a namespace with a short name.

    The default Ingress host is ``<name>-<namespace>.<domain>`` and its first
    label must fit 63 characters; the plugin's namespaces (up to 63 characters
    themselves) would make every PoC host invalid. Other tests in this
    directory get the plugin's ``kube`` unchanged.
    """
    if not request.module.__name__.rpartition(".")[2].startswith(CONTROLLER_TESTS):
        yield kube
        return
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_")).strip("-")
    namespace = f"t-{slug[:SHORT_NAMESPACE_SLUG].rstrip('-')}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(kube.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    if kube.server is not None:
        kube.server.reset_requests()
    try:
        yield replace(kube, namespace=namespace)
    finally:
        try:
            core.delete_namespace(namespace)
        except client.ApiException as error:
            if error.status != 404:
                raise


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


