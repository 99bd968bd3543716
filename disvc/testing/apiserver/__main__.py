"""Run the loopback API server standalone (for the demo and manual poking).

``python -m disvc.testing.apiserver --port 0 --kubeconfig-out PATH`` prints
the URL, writes a kubeconfig pointing at it, and serves until SIGTERM or
SIGINT. It starts empty, like a fresh cluster; ``--install-crds`` installs
the DistributedInferenceService and InferenceService CRDs first (those of
``disvc.testing.crds``), so a controller pointed at it can start at once.
``--data-plane`` also plays KServe and the network: every InferenceService
gets real KServe model servers and is reported Ready once they are, and a
router on ``--router-port`` answers requests by Host (the Ingress hosts and
``<svc>.<ns>.svc.cluster.local``), so ``curl`` reaches the model.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import threading
from types import FrameType
from typing import Any

from kubernetes import config

from disvc.testing import crds
from disvc.testing.apiserver.server import ApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m disvc.testing.apiserver",
        description="Serve an in-memory Kubernetes API on 127.0.0.1.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig-out", help="write a kubeconfig for the server here")
    parser.add_argument("--history", type=int, default=1000, help="changes per resource a watch can resume across")
    parser.add_argument(
        "--install-crds",
        action="store_true",
        help="install the DistributedInferenceService and InferenceService CRDs before serving",
    )
    parser.add_argument(
        "--data-plane",
        action="store_true",
        help="also run KServe's part (model servers for every InferenceService, which then "
        "turns Ready) and a router for Ingress and Service hosts (needs the dataplane extra)",
    )
    parser.add_argument("--router-port", type=int, default=0, help="the router's port on 127.0.0.1; 0 picks one")
    args = parser.parse_args(argv)
    if args.data_plane and not dataplane_installed():
        parser.error("--data-plane needs the dataplane extra: pip install -e '.[dataplane]'")

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = ApiServer(host=args.host, port=args.port, history=args.history).start()
    plane: Any = None
    try:
        if args.install_crds:
            install_crds(server)
        if args.kubeconfig_out:
            server.write_kubeconfig(args.kubeconfig_out)
        print(server.url, flush=True)
        if args.data_plane:
            plane = start_data_plane(server, args.router_port)
            print(f"data plane: router on {plane.url} (send requests with a Host header)", file=sys.stderr, flush=True)
        while not stopping.wait(3600):
            pass
    finally:
        if plane is not None:
            plane.stop()
        server.stop()
    return 0


def dataplane_installed() -> bool:
    return importlib.util.find_spec("kserve") is not None


def start_data_plane(server: ApiServer, router_port: int) -> Any:
    """KServe's part and the router, against this server (imported here: the
    dataplane extra is optional and heavy)."""
    from disvc.testing.dataplane.plane import DataPlane

    api_client = config.new_client_from_config_dict(server.kubeconfig())  # type: ignore[no-untyped-call]
    return DataPlane(api_client, router_port=router_port).start()


def install_crds(server: ApiServer) -> None:
    """Install the CRDs a controller needs, saying on stderr which ones."""
    api_client = config.new_client_from_config_dict(server.kubeconfig())  # type: ignore[no-untyped-call]
    try:
        if crds.kserve_crd_file() is None:
            print(f"note: {crds.KSERVE_CRD_MISSING} (a schema-less stand-in is installed)", file=sys.stderr)
        for crd, replace in crds.crds_to_install():
            crds.install_crd(api_client, crd, replace)
            print(f"installed CRD {crd['metadata']['name']}", file=sys.stderr, flush=True)
    finally:
        api_client.close()


if __name__ == "__main__":
    sys.exit(main())
