"""The whole data plane as one thing to start and stop.

``DataPlane(api_client).start()`` brings up, in order: the pod registry; the
KServe stand-in with model-server pods (every ISVC gets real KServe model
servers and is reported Ready only once they are); the router's watches,
and the route status it writes as a Gateway implementation would
(``gateway_status``); and the router itself on a loopback port. ``stop()`` takes them down in the
reverse order and leaves no model-server process behind. With ``knative=True``
the KServe stand-in is the Knative-mode one (``knative_stub``): ISVCs in
Knative mode get revision pods behind a queue-proxy hop
(``launcher.queue_proxies`` counts their requests per revision).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Self

from kubernetes import client

from disvc.testing.dataplane.cluster import InformerView
from disvc.testing.dataplane.gateway_status import GatewayStatusWriter
from disvc.testing.dataplane.launcher import PodLauncher
from disvc.testing.dataplane.pods import PodRegistry
from disvc.testing.dataplane.router.server import Router
from disvc.testing.knative_stub import KnativeKServeStub
from disvc.testing.kserve_stub import KServeStub
from disvc.testing.running import Running


class DataPlane(Running):
    """Model-server pods for every ISVC, and a router in front of them."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespace: str | None = None,
        log_dir: Path | None = None,
        domain: str = "example.com",
        router_port: int = 0,
        apply_delay: float = 0.0,
        knative: bool = False,
    ) -> None:
        self.registry = PodRegistry()
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="disvc-pods-"))
        self.launcher = PodLauncher(self.registry, self.log_dir)
        self.stub: KServeStub
        if knative:
            self.stub = KnativeKServeStub(api_client, namespace=namespace, domain=domain, pods=self.launcher)
        else:
            self.stub = KServeStub(api_client, namespace=namespace, domain=domain, pods=self.launcher)
        self.view = InformerView(api_client, namespace=namespace)
        self.gateway_status = GatewayStatusWriter(api_client, self.view)
        """Writes route status for Gateways of a GatewayClass the router claims."""
        self.router = Router(self.view, self.registry, port=router_port, apply_delay=apply_delay)
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def start(self) -> Self:
        try:
            self.stub.start()
            self.view.start()
            self.gateway_status.start()
            self.address = self.router.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.router.stop()
        self.gateway_status.stop()
        self.view.stop()
        self.stub.stop()
        self.launcher.stop()

