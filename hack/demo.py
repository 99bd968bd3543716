"""See disvc work end to end, with or without a cluster.

Without ``--kubeconfig``: starts the loopback Kubernetes API the tests use,
installs the DISVC and InferenceService CRDs, starts the real controller
(``python -m disvc.controller``) as a subprocess, applies the sample DISVC,
plays KServe's part by marking each InferenceService Ready, and prints every
object the controller created and the DISVC's status with its URLs. Then it
stops everything (or keeps serving with ``--keep``).

With ``--kubeconfig PATH``: installs the DISVC CRD on that cluster and runs
the controller against it in the foreground (KServe must be installed there).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from disvc.testing.apiserver import ApiServer
from disvc.testing.crds import DISVC_CRD_DIR, crds_to_install, install_crd, kserve_crd_file, load_yaml_documents
from disvc.testing.kserve_stub import KServeStub
from disvc.testing.polling import eventually
from disvc.testing.rawapi import request_json

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice.yaml"
DISVC_PATH = "/apis/serving.kserve.io/v1alpha1/namespaces/{ns}/distributedinferenceservices/{name}"
CHILD_LISTS = [
    ("InferenceService", "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices"),
    ("Service", "/api/v1/namespaces/{ns}/services"),
    ("Ingress", "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"),
]


def main() -> int:
    parser = argparse.ArgumentParser(prog="hack/demo.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", help="run the controller against this cluster instead")
    parser.add_argument("-f", "--file", type=Path, default=SAMPLE, help="DISVC manifest to apply")
    parser.add_argument("--keep", action="store_true", help="keep the local API and controller running")
    args = parser.parse_args()
    if args.kubeconfig:
        return run_on_cluster(args.kubeconfig)
    return run_locally(args.file, args.keep)


def run_on_cluster(kubeconfig: str) -> int:
    api = config.new_client_from_config(config_file=kubeconfig)
    for path in sorted(DISVC_CRD_DIR.glob("*.yaml")):
        for crd in load_yaml_documents(path.read_text()):
            print(f"installing CRD {crd['metadata']['name']}")
            install_crd(api, crd, replace=True)
    print("starting the controller (Ctrl-C stops it); apply config/samples/ in another terminal")
    controller = [sys.executable, "-m", "disvc.controller", "--kubeconfig", kubeconfig,
                  "--metrics-bind-address", "127.0.0.1:8080", "--health-probe-bind-address", "127.0.0.1:8081"]
    os.execv(sys.executable, controller)


def run_locally(manifest: Path, keep: bool) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="disvc-demo-"))
    with ApiServer() as server:
        kubeconfig = server.write_kubeconfig(str(workdir / "kubeconfig"))
        api = config.new_client_from_config(config_file=kubeconfig)
        step(f"local Kubernetes API on {server.url} (kubeconfig: {kubeconfig})")
        for crd, replace in crds_to_install():
            install_crd(api, crd, replace)
            step(f"CRD {crd['metadata']['name']} installed")
        if kserve_crd_file() is None:
            step("KServe's CRD file is not here, so InferenceServices are not checked against its schema "
                 "(hack/fetch-kserve-crd.sh gets it)")

        log_path = workdir / "controller.log"
        with open(log_path, "w") as log, KServeStub(api, ready_after=1.0):
            controller = subprocess.Popen(
                [sys.executable, "-m", "disvc.controller", "--kubeconfig", kubeconfig,
                 "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0",
                 "--log-format", "json"],
                stdout=log, stderr=subprocess.STDOUT,
            )
            step(f"controller started (pid {controller.pid}, log: {log_path})")
            try:
                disvc = apply_manifest(api, manifest)
                ns, name = disvc["metadata"]["namespace"], disvc["metadata"]["name"]
                step(f"applied DistributedInferenceService {ns}/{name}; KServe stand-in marks ISVCs Ready after 1s")
                live = eventually(lambda: ready(api, ns, name), timeout=60, interval=0.2)
                show(api, ns, name, live)
                if keep:
                    step(f"still running against {server.url} (kubeconfig: {kubeconfig}); Ctrl-C stops")
                    threading.Event().wait()
            except KeyboardInterrupt:
                pass
            except AssertionError as error:
                print(f"demo: the DISVC did not become Ready: {error}", file=sys.stderr)
                print(f"demo: controller log: {log_path}", file=sys.stderr)
                return 1
            finally:
                controller.terminate()
                code = controller.wait(timeout=30)
                step(f"controller stopped (exit code {code})")
    return 0


def apply_manifest(api: client.ApiClient, manifest: Path) -> dict[str, Any]:
    disvc = next(d for d in load_yaml_documents(manifest.read_text()) if d["kind"] == "DistributedInferenceService")
    ns = disvc["metadata"].setdefault("namespace", "default")
    try:
        request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    except client.ApiException as error:
        if error.status != 409:
            raise
    return request_json(api, "PATCH", DISVC_PATH.format(ns=ns, name=disvc["metadata"]["name"]), body=disvc,
                        query=[("fieldManager", "demo"), ("force", "true")],
                        content_type="application/apply-patch+yaml")


def ready(api: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    live = request_json(api, "GET", DISVC_PATH.format(ns=ns, name=name))
    conditions = {c["type"]: c for c in live.get("status", {}).get("conditions", [])}
    assert conditions.get("Ready", {}).get("status") == "True", live.get("status")
    return live


def show(api: client.ApiClient, ns: str, name: str, disvc: dict[str, Any]) -> None:
    step("objects the controller created:")
    for kind, path in CHILD_LISTS:
        items = request_json(api, "GET", path.format(ns=ns), query=[("labelSelector", f"disvc={name}")])["items"]
        for obj in items:
            print(f"    {kind:<17} {ns}/{obj['metadata']['name']:<32} {describe(kind, obj)}")
    step(f"status of DistributedInferenceService {ns}/{name}:")
    print(indent(yaml.safe_dump(disvc["status"], sort_keys=False)))


def describe(kind: str, obj: dict[str, Any]) -> str:
    spec = obj.get("spec", {})
    if kind == "Service":
        ports = ", ".join(f"{p['port']}->{p.get('targetPort')}" for p in spec.get("ports", []))
        return f"selector={json.dumps(spec.get('selector'))} affinity={spec.get('sessionAffinity')} {ports}"
    if kind == "Ingress":
        rule = spec["rules"][0]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        return f"host={rule.get('host')} -> {backend['name']}:{backend['port'].get('number')}"
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in obj.get("status", {}).get("conditions", []))
    return f"group={obj['metadata']['labels'].get('disvc.group')} ready={ready}"


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
