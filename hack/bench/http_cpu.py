"""CPU per request of the candidate HTTP stacks, against a real API server.

    python hack/bench/http_cpu.py --kubeconfig /tmp/k8s-run/admin.kubeconfig [-n 2000]

Each stack sends the same GET (one ConfigMap, about 400 bytes of JSON) ``n``
times over one kept-alive TLS connection, from one thread; the figure is
this process's CPU time (user + system) divided by ``n``, so the server's
own time is left out. Stacks: ``llhttp`` (``kube.transport.Connections``,
the controller's: httptools parses, the pool writes requests), ``urllib3`` (a
``PoolManager`` as the kubernetes client makes it), and each ``--old
NAME=PATH``: a previous transport module with the same ``Connections``
interface, loaded from a file (how the h11 pool and the hand-written
transport before it were measured: ``git show REV:disvc/controller/kube/transport.py``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client, config

from disvc.controller.kube import auth

PATH = "/api/v1/namespaces/default/configmaps/disvc-http-bench"
TIMEOUT = (5.0, 30.0)


def cpu_per_request(send: Callable[[], bytes], n: int) -> float:
    for _ in range(50):
        send()  # warm up: connection, TLS, caches
    start = time.process_time()
    for _ in range(n):
        send()
    return (time.process_time() - start) / n


def _get_body(pool: Any, headers: dict[str, str]) -> bytes:
    body: bytes = pool.request("GET", PATH, headers, None, TIMEOUT).body
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument(
        "--old", action="append", default=[], metavar="NAME=PATH", help="a previous transport.py to measure beside these",
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    configuration = client.Configuration()
    config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    api = client.ApiClient(configuration)
    headers = {"Accept": "application/json", **{k: v for k, v in {"Authorization": configuration.api_key.get("authorization") or configuration.get_api_key_with_prefix("BearerToken") or ""}.items() if v}}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": PATH.rsplit("/", 1)[1]}, "data": {"k": "v" * 200}}
    api.call_api("POST", configuration.host + PATH.rsplit("/", 1)[0], header_params={"Content-Type": "application/json", **headers}, body=json.dumps(body))

    stacks: dict[str, Callable[[], bytes]] = {}
    ours = auth.connections(configuration)
    stacks["llhttp pool (kube.transport)"] = lambda: ours.request("GET", PATH, headers, None, TIMEOUT).body
    for number, named in enumerate(args.old):
        name, _, path = named.rpartition("=")
        module_name = f"old_transport_{number}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        old = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = old  # dataclasses look their module up
        spec.loader.exec_module(old)
        old_pool = old.Connections(configuration.host, old.TlsSettings(ca_file=configuration.ssl_ca_cert))
        stacks[name or path] = functools.partial(_get_body, old_pool, headers)
    pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=configuration.ssl_ca_cert)
    url = configuration.host + PATH
    stacks["urllib3"] = lambda: pool.request("GET", url, headers=headers, retries=False, timeout=urllib3.Timeout(*TIMEOUT)).data

    try:
        results: dict[str, list[float]] = {name: [] for name in stacks}
        for _ in range(args.rounds):
            for name, send in stacks.items():
                results[name].append(cpu_per_request(send, args.n))
        for name, values in results.items():
            print(f"{name:32s} {min(values) * 1e6:7.0f} µs CPU/request (best of {args.rounds}, n={args.n})")
    finally:
        api.call_api("DELETE", url, header_params=headers)


if __name__ == "__main__":
    main()
