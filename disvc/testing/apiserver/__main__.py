"""Run the loopback API server standalone (for the demo and manual poking).

``python -m disvc.testing.apiserver --port 0 --kubeconfig-out PATH`` prints
the URL, writes a kubeconfig pointing at it, and serves until SIGTERM or
SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from disvc.testing.apiserver.server import ApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m disvc.testing.apiserver",
        description="Serve an in-memory Kubernetes API on 127.0.0.1.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig-out", help="write a kubeconfig for the server here")
    parser.add_argument("--history", type=int, default=1000,
                        help="changes per resource a watch can resume across")
    args = parser.parse_args(argv)

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = ApiServer(host=args.host, port=args.port, history=args.history).start()
    try:
        if args.kubeconfig_out:
            server.write_kubeconfig(args.kubeconfig_out)
        print(server.url, flush=True)
        while not stopping.wait(3600):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
