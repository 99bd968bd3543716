"""The baseline: a plain script that makes what the controller makes, directly.

It is what the controller is measured against: with the same ``kubernetes``
client and its typed APIs, the way a typical script would, it creates N
DISVCs, then for each one its R+4 children (``CustomObjectsApi`` for the
ISVCs, ``CoreV1Api`` for the Services, ``NetworkingV1Api`` for the Ingress,
``AppsV1Api`` for the ControllerRevision keeping the template)
and patches its status once. No watches, no cache, no diffing: the floor
any controller doing the same writes through the same client pays.

``--disvcs-only`` stops after the DISVCs: that is how the controller run
creates its input, so both runs begin with identical requests.

Runs as a subprocess of ``converge.py``/``memory.py`` (its own interpreter,
so it shares no GIL with the in-process API server). Protocol on stdio:
prints ``ready`` once imported and connected; with ``--wait-go`` it then
waits for a line on stdin, so interpreter start-up stays out of the timing;
at the end one JSON line: ``start``/``end`` (``time.monotonic``, which on
Linux is comparable across processes), ``seconds``, ``writes`` and ``cpu``
(this process's CPU seconds over the same span).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, cast

import workload
from kubernetes import client, config
from workload import DISVC_PLURAL, DISVC_VERSION, GROUP, ISVC_PLURAL, ISVC_VERSION


class Baseline:
    """Creates the workload through the typed APIs, counting its writes."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.writes = 0

    def create_disvc(self, manifest: workload.Obj) -> workload.Obj:
        self.writes += 1
        created = self.custom.create_namespaced_custom_object(
            GROUP, DISVC_VERSION, self.namespace, DISVC_PLURAL, manifest
        )
        return cast(workload.Obj, created)

    def create_child(self, obj: workload.Obj) -> None:
        # Typed APIs accept a plain dict body as well as a V1* model.
        self.writes += 1
        body: Any = obj
        kind = obj["kind"]
        if kind == "InferenceService":
            self.custom.create_namespaced_custom_object(
                GROUP, ISVC_VERSION, self.namespace, ISVC_PLURAL, obj
            )
        elif kind == "Service":
            self.core.create_namespaced_service(self.namespace, body)
        elif kind == "Ingress":
            self.networking.create_namespaced_ingress(self.namespace, body)
        elif kind == "ControllerRevision":
            self.apps.create_namespaced_controller_revision(self.namespace, body)
        else:
            raise ValueError(f"the baseline does not know how to create a {kind}")

    def patch_status(self, disvc: workload.Obj, status: workload.Obj) -> None:
        self.writes += 1
        self.custom.patch_namespaced_custom_object_status(
            GROUP, DISVC_VERSION, self.namespace, DISVC_PLURAL, disvc["metadata"]["name"],
            {"status": status},
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default=workload.NAMESPACE)
    parser.add_argument("--n", type=int, required=True, help="how many DISVCs")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--disvcs-only", action="store_true", help="create the DISVCs and stop")
    parser.add_argument("--wait-go", action="store_true", help="wait for a stdin line before starting")
    args = parser.parse_args(argv)

    api_client = config.new_client_from_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    baseline = Baseline(api_client, args.namespace)
    manifests = [workload.disvc_manifest(i, args.replicas, args.namespace) for i in range(args.n)]
    print("ready", flush=True)
    if args.wait_go:
        sys.stdin.readline()

    start, cpu = time.monotonic(), time.process_time()
    created = [baseline.create_disvc(manifest) for manifest in manifests]
    if not args.disvcs_only:
        for disvc in created:
            kids = workload.children(disvc)
            for child in [*kids, *workload.revisions(disvc, kids)]:
                baseline.create_child(child)
            baseline.patch_status(disvc, workload.converged_status(disvc, kids))
    end, cpu = time.monotonic(), time.process_time() - cpu

    print(json.dumps({"start": start, "end": end, "seconds": end - start, "writes": baseline.writes, "cpu": cpu}), flush=True)
    api_client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
