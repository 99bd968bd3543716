"""One predictor pod's container: KServe's model server with the iris model.

Run as ``python -m disvc.testing.dataplane.modelserver --pod-ip IP -- ARGS...``
where ``ARGS`` are the predictor container's args (the serving runtime's,
then the InferenceService's, as :mod:`.runtime` merges them). They are parsed
by KServe's own model-server parser (``kserve.model_server.parser``), so which
``--model_name`` wins, and the HTTP and gRPC ports, are KServe's answer.

Once parsed, one JSON line goes to stdout, ``{"http_port": ..,
"grpc_port": .., "model_name": ..}``, so the launcher knows where to probe.

Test-only switches, read from the process environment (the ISVC's
``predictor.model.env`` is the container's environment, as KServe passes it):

- ``DISVC_IRIS_FAIL_RATE``: a share (0..1) of inference requests that fail
  with KServe's ``InferenceError`` (HTTP 500, gRPC ``INTERNAL``);
- ``DISVC_IRIS_DELAY_SECONDS``: seconds each inference request waits;
- ``DISVC_IRIS_CRASH``: any non-empty value other than ``0`` makes the
  process exit with status 1 before the model loads: a model that never loads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, Final

CRASH_EXIT_CODE: Final = 1


def _split(argv: Sequence[str]) -> tuple[str, list[str]]:
    """``--pod-ip IP -- container args...`` into the IP and the container args."""
    own, container = (list(argv), []) if "--" not in argv else (
        list(argv[: argv.index("--")]), list(argv[argv.index("--") + 1 :]),
    )  # fmt: skip
    parser = argparse.ArgumentParser(prog="disvc.testing.dataplane.modelserver")
    parser.add_argument("--pod-ip", required=True, help="the only address to listen on")
    return parser.parse_args(own).pod_ip, container


def _env_float(name: str) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else 0.0


def _confine_to(pod_ip: str) -> None:
    """Make KServe's servers listen on the pod IP only.

    KServe binds every interface (uvicorn on ``0.0.0.0``, gRPC on ``[::]``),
    which inside a pod means the pod's own network namespace. Here every pod
    shares the host's, so binding all interfaces would let two pods clash on
    port 8080 and let traffic meant for one reach another: each process keeps
    to its own loopback address instead, as its network namespace would.
    """
    import kserve.protocol.grpc.server as grpc_server
    import uvicorn
    from grpc import aio

    base_config = uvicorn.Config

    class PodConfig(base_config):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["host"] = pod_ip
            super().__init__(*args, **kwargs)

    uvicorn.Config = PodConfig  # type: ignore[misc]

    def pod_server(*args: Any, **kwargs: Any) -> Any:
        server = aio.server(*args, **kwargs)
        add_port = server.add_insecure_port

        def add_insecure_port(address: str) -> int:
            port: int = add_port(f"{pod_ip}:{address.rsplit(':', 1)[1]}")
            return port

        server.add_insecure_port = add_insecure_port
        return server

    # Only KServe's gRPC module sees the wrapper; grpc.aio itself is untouched.
    grpc_server.aio = argparse.Namespace(server=pod_server)


def main(argv: Sequence[str] | None = None) -> int:
    pod_ip, container_args = _split(sys.argv[1:] if argv is None else argv)
    if os.environ.get("DISVC_IRIS_CRASH", "").strip() not in ("", "0"):
        print("DISVC_IRIS_CRASH is set: exiting before the model loads", file=sys.stderr, flush=True)
        return CRASH_EXIT_CODE
    # kserve.model_server parses sys.argv when imported and takes the
    # ModelServer's defaults from it: it must see the container's args.
    sys.argv = [sys.argv[0], *container_args]
    from kserve import ModelServer
    from kserve.model_server import parser

    from disvc.testing.dataplane.iris import IrisModel

    args, _ = parser.parse_known_args(container_args)
    _confine_to(pod_ip)
    print(
        json.dumps({"http_port": args.http_port, "grpc_port": args.grpc_port, "model_name": args.model_name}),
        flush=True,
    )
    model = IrisModel(
        args.model_name,
        fail_rate=_env_float("DISVC_IRIS_FAIL_RATE"),
        delay=_env_float("DISVC_IRIS_DELAY_SECONDS"),
    )
    model.load()
    ModelServer().start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
