"""See disvc work end to end, with or without a cluster.

Both ways run the same walk-through: apply the sample DISVC, wait until the
controller has created its children and reported its status, and print
every object created and the status with its URLs.

Without ``--kubeconfig``: starts the loopback Kubernetes API the tests use,
installs the DISVC and InferenceService CRDs, starts the real controller
(``python -m disvc.controller``) as a subprocess and plays KServe's part
with the data plane of ``disvc.testing.dataplane``: real KServe model
servers for every InferenceService, and a router for the Ingress and
Service host names. It ends where the seed's PoC ends: the seed's v2 iris
request sent to the internal and the external host name, the prediction and
the replica that answered; then it scales to 3 and shows three clients each
kept on one replica. Then it stops everything (or keeps serving with
``--keep``).

With ``--kubeconfig PATH`` it borrows a real cluster and leaves it as it was
(and, once the DISVC is Ready, sends the seed's request to its Service
through ``kubectl port-forward``):

- it changes no cluster-wide object unless asked: a missing CRD is an error,
  or with ``--install-crds`` is installed (never replaced);
- it never runs a second controller beside an installed one: when the
  manifests' Lease (``disvc-system/disvc-controller-leader``) is held, that
  controller does the work; otherwise it starts one for its namespace only,
  electing itself on that same Lease (so an installed controller starting
  meanwhile waits), on free loopback ports;
- everything happens in a namespace of its own, ``disvc-demo-<random>``,
  which it deletes at the end (with ``--keep``, on Ctrl-C).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.util
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from disvc.testing.apiserver import ApiServer
from disvc.testing.crds import (
    CRD_PATH,
    KSERVE_CRD_MISSING,
    crds_to_install,
    install_crd,
    kserve_crd_file,
    load_yaml_documents,
)
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
# The Lease of config/manager (--leader-elect in the pod's namespace).
LEASE_NAMESPACE = "disvc-system"
LEASE_NAME = "disvc-controller-leader"
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}"
READY_TIMEOUT = 120.0
"""Locally: seconds for model servers to start and the DISVC to turn Ready."""


class DemoError(Exception):
    """The demo cannot go on; the message says what to do."""


def main() -> int:
    parser = argparse.ArgumentParser(prog="hack/demo.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", help="run the walk-through on this cluster, in a namespace of its own")
    parser.add_argument("-f", "--file", type=Path, default=SAMPLE, help="DISVC manifest to apply")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep everything running until Ctrl-C (locally: the API and the controller; "
        "on a cluster: the namespace and the controller)",
    )
    parser.add_argument(
        "--install-crds",
        action="store_true",
        help="on a cluster: install the DISVC and InferenceService CRDs if missing",
    )
    parser.add_argument("--ingress-domain", help="on a cluster: --ingress-domain of the demo's controller")
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="on a cluster: seconds to wait for the DISVC to become Ready (models load slowly)",
    )
    args = parser.parse_args()
    # SIGTERM (a service manager, `kill`, a CI timeout) stops the demo as
    # Ctrl-C does: every cleanup below runs, the controller included.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        if args.kubeconfig:
            return run_on_cluster(args)
        return run_locally(args.file, args.keep)
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --- the two ways to run it ------------------------------------------------------


def run_locally(manifest: Path, keep: bool) -> int:
    workdir = make_workdir()
    with ApiServer() as server:
        kubeconfig = server.write_kubeconfig(str(workdir / "kubeconfig"))
        api = config.new_client_from_config(config_file=kubeconfig)
        step(f"local Kubernetes API on {server.url} (kubeconfig: {kubeconfig})")
        for crd, replace in crds_to_install():
            install_crd(api, crd, replace)
            step(f"CRD {crd['metadata']['name']} installed")
        if kserve_crd_file() is None:
            step(f"{KSERVE_CRD_MISSING} (a schema-less stand-in is installed)")
        disvc = load_disvc(manifest)
        namespace = disvc["metadata"].setdefault("namespace", "default")
        create_namespace(api, namespace)
        with contextlib.ExitStack() as stack:
            plane = stack.enter_context(kserve_part(api, workdir))
            log_path = stack.enter_context(controller(kubeconfig, workdir, []))
            if not walk_through(api, disvc, timeout=READY_TIMEOUT, log_path=log_path):
                return 1
            if plane is not None:
                send_requests(api, plane.address, disvc["metadata"]["name"], namespace)
            if keep:
                step(f"still running against {server.url} (kubeconfig: {kubeconfig}); Ctrl-C stops")
                if plane is not None:
                    host = f"{disvc['metadata']['name']}.{namespace}.svc.cluster.local"
                    step(f"try: curl -H 'Host: {host}' {plane.url}/v2/models/{disvc['metadata']['name']}")
                wait_for_ctrl_c()
    return 0


@contextlib.contextmanager
def kserve_part(api: client.ApiClient, workdir: Path) -> Iterator[Any]:
    """KServe's part: the data plane when its extra is installed (real model
    servers, a router), else the stand-in that only marks ISVCs Ready."""
    if importlib.util.find_spec("kserve") is None:
        with KServeStub(api, ready_after=1.0):
            step("KServe stand-in marks ISVCs Ready after 1s (no requests: "
                 "pip install -e '.[dataplane]' for real model servers)")
            yield None
        return
    from disvc.testing.dataplane.plane import DataPlane

    with DataPlane(api, log_dir=workdir / "pods") as plane:
        step(f"data plane: KServe model servers for every ISVC (logs: {workdir / 'pods'}), router on {plane.url}")
        yield plane


def send_requests(api: client.ApiClient, router: tuple[str, int], name: str, ns: str) -> None:
    """The seed's validation: its request through both host names, then three
    clients on three replicas, each kept on one."""
    from disvc.testing.dataplane.traffic import Client, infer_path, prediction

    internal, external = f"{name}.{ns}.svc.cluster.local", f"{name}-{ns}.example.com"
    caller = Client("127.0.0.2")
    for host in (internal, external):
        answer = caller.infer(router, host, name)
        if not answer.ok:
            raise DemoError(f"POST http://{host}{infer_path(name)} answered {answer.status}: {answer.body[:200]!r}")
        step(f"POST http://{host}{infer_path(name)} -> {answer.status} "
             f"prediction {prediction(answer.body)} from {answer.isvc} (pod {answer.pod})")
    request_json(api, "PATCH", DISVC_PATH.format(ns=ns, name=name) + "/scale", body={"spec": {"replicas": 3}},
                 content_type="application/merge-patch+json")  # fmt: skip
    step("scaled to 3 replicas (kubectl scale disvc ... --replicas=3)")
    eventually(lambda: ready_replicas(api, ns, name, 3), timeout=READY_TIMEOUT, interval=0.5)
    for source in ("127.0.0.11", "127.0.0.12", "127.0.0.13"):
        caller = Client(source)
        answered = [caller.infer(router, internal, name).isvc for _ in range(5)]
        step(f"client {source}: 5 requests to {internal} answered by {', '.join(sorted(set(map(str, answered))))}")


def port_forward_request(kubeconfig: str, api: client.ApiClient, ns: str, name: str) -> None:
    """On a cluster: the seed's request to Service ``name`` through ``kubectl
    port-forward`` (a loopback port on this machine), once the DISVC is Ready."""
    from disvc.testing.dataplane.traffic import Client, infer_path, prediction

    try:
        ready(api, ns, name)
    except AssertionError:
        step("not Ready: no request sent")
        return
    process = subprocess.Popen(
        ["kubectl", "--kubeconfig", kubeconfig, "-n", ns, "port-forward", f"service/{name}", ":80"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline() if process.stdout else ""
        if "Forwarding from 127.0.0.1:" not in line:
            step(f"kubectl port-forward failed: {line.strip()}")
            return
        port = int(line.split("127.0.0.1:")[1].split()[0])
        host = f"{name}.{ns}.svc.cluster.local"
        answer = Client("127.0.0.1").infer(("127.0.0.1", port), host, name)
        shown = prediction(answer.body) if answer.ok else answer.body[:200]
        step(f"POST http://{host}{infer_path(name)} (kubectl port-forward service/{name}) -> {answer.status} {shown}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def ready_replicas(api: client.ApiClient, ns: str, name: str, count: int) -> None:
    status = ready(api, ns, name)["status"]
    assert status.get("readyReplicas") == count, status


def run_on_cluster(args: argparse.Namespace) -> int:
    api = config.new_client_from_config(config_file=args.kubeconfig)
    step(f"cluster {api.configuration.host} (kubeconfig: {args.kubeconfig})")
    check_crds(api, install=args.install_crds)
    namespace = f"disvc-demo-{secrets.token_hex(3)}"
    disvc = load_disvc(args.file)
    disvc["metadata"]["namespace"] = namespace
    create_namespace(api, namespace)
    step(f"namespace {namespace} created (deleted at the end)")
    try:
        with contextlib.ExitStack() as stack:
            holder = running_controller(api)
            if holder:
                step(
                    f"a controller is running (Lease {LEASE_NAMESPACE}/{LEASE_NAME} held by {holder}): "
                    "it does the work, the demo starts none"
                )
            else:
                workdir = make_workdir()
                flags = ["--namespace", namespace, *leader_election_flags(api, namespace)]
                if args.ingress_domain:
                    flags += ["--ingress-domain", args.ingress_domain]
                stack.enter_context(controller(args.kubeconfig, workdir, flags))
            if not walk_through(api, disvc, timeout=args.timeout, log_path=None, need_ready=False):
                return 1
            port_forward_request(args.kubeconfig, api, namespace, disvc["metadata"]["name"])
            if args.keep:
                step(f"kept: namespace {namespace}; Ctrl-C deletes it")
                wait_for_ctrl_c()
    finally:
        request_json(api, "DELETE", f"/api/v1/namespaces/{namespace}")
        step(f"namespace {namespace} deleted (its DISVC and children go with it)")
    return 0


# --- the walk-through --------------------------------------------------------------


def walk_through(
    api: client.ApiClient, disvc: dict[str, Any], timeout: float, log_path: Path | None, need_ready: bool = True
) -> bool:
    """Apply ``disvc``, wait for the controller's answer, show it; False when none came."""
    applied = apply_disvc(api, disvc)
    ns, name = applied["metadata"]["namespace"], applied["metadata"]["name"]
    step(f"applied DistributedInferenceService {ns}/{name}")
    try:
        live = eventually(lambda: reported(api, ns, name), timeout=60, interval=0.2)
        try:
            live = eventually(lambda: ready(api, ns, name), timeout=timeout, interval=0.5)
        except AssertionError:
            if need_ready:
                raise
            step(f"not Ready after {timeout:.0f}s (KServe may still be loading the model); as it stands:")
    except AssertionError as error:
        print(f"demo: the controller did not report on the DISVC: {error}", file=sys.stderr)
        if log_path is not None:
            print(f"demo: controller log: {log_path}", file=sys.stderr)
        return False
    show(api, ns, name, live)
    return True


def load_disvc(manifest: Path) -> dict[str, Any]:
    return next(d for d in load_yaml_documents(manifest.read_text()) if d["kind"] == "DistributedInferenceService")


def create_namespace(api: client.ApiClient, namespace: str) -> None:
    try:
        request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    except client.ApiException as error:
        if error.status != 409:
            raise


def apply_disvc(api: client.ApiClient, disvc: dict[str, Any]) -> dict[str, Any]:
    meta = disvc["metadata"]
    return request_json(
        api,
        "PATCH",
        DISVC_PATH.format(ns=meta["namespace"], name=meta["name"]),
        body=disvc,
        query=[("fieldManager", "demo"), ("force", "true")],
        content_type="application/apply-patch+yaml",
    )


def reported(api: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    """The DISVC once the controller has seen its latest spec and created the ISVCs."""
    live = request_json(api, "GET", DISVC_PATH.format(ns=ns, name=name))
    status = live.get("status", {})
    assert status.get("observedGeneration") == live["metadata"]["generation"], status
    isvcs = request_json(api, "GET", CHILD_LISTS[0][1].format(ns=ns), query=[("labelSelector", f"disvc={name}")])
    assert len(isvcs["items"]) == live["spec"].get("replicas", 1), "ISVCs not all created yet"
    return live


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
    print(indent(yaml.safe_dump(disvc["status"], sort_keys=False)), flush=True)


def describe(kind: str, obj: dict[str, Any]) -> str:
    spec = obj.get("spec", {})
    if kind == "Service":
        ports = ", ".join(f"{p['port']}->{p.get('targetPort')}" for p in spec.get("ports", []))
        return f"selector={json.dumps(spec.get('selector'))} affinity={spec.get('sessionAffinity')} {ports}"
    if kind == "Ingress":
        rule = spec["rules"][0]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        return f"host={rule.get('host')} -> {backend['name']}:{backend['port'].get('number')}"
    is_ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in obj.get("status", {}).get("conditions", [])
    )
    return f"group={obj['metadata']['labels'].get('disvc.group')} ready={is_ready}"


# --- borrowing a cluster politely ----------------------------------------------------


def check_crds(api: client.ApiClient, install: bool) -> None:
    """Every CRD the demo needs exists afterwards; only ``install`` creates one.

    Never our minimal Gateway API copy: on a real cluster it would pass for
    the real one. Without Gateway API the demo shows the Ingress path and says so."""
    wanted = [crd for crd, _ in crds_to_install(with_external=False)]
    missing = [crd for crd in wanted if not exists(api, f"{CRD_PATH}/{crd['metadata']['name']}")]
    if missing and not install:
        names = ", ".join(crd["metadata"]["name"] for crd in missing)
        raise DemoError(
            f"CRD {names} not installed. Install KServe and disvc (kubectl apply -k config/default), "
            "or pass --install-crds to let the demo install what is missing (it stays installed)"
        )
    for crd in missing:
        install_crd(api, crd, replace=False)
        step(f"CRD {crd['metadata']['name']} installed (it stays: kubectl delete crd {crd['metadata']['name']})")
    if not exists(api, f"{CRD_PATH}/httproutes.gateway.networking.k8s.io"):
        step("Gateway API is not installed here: the demo shows the Ingress path only "
             "(install the Gateway API release to route through a Gateway)")


def running_controller(api: client.ApiClient) -> str | None:
    """The holder of the manifests' Lease while its holder keeps renewing it."""
    path = LEASE_PATH.format(ns=LEASE_NAMESPACE, name=LEASE_NAME)
    try:
        spec = request_json(api, "GET", path).get("spec", {})
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    holder, renewed = spec.get("holderIdentity"), spec.get("renewTime")
    if not holder or not renewed:
        return None  # released on a clean shutdown
    expires = datetime.fromisoformat(renewed) + timedelta(seconds=spec.get("leaseDurationSeconds") or 15)
    return str(holder) if expires > datetime.now(UTC) else None


def leader_election_flags(api: client.ApiClient, namespace: str) -> list[str]:
    """Elect on the manifests' Lease where an install could take it; else in our namespace."""
    lease_namespace = LEASE_NAMESPACE if exists(api, f"/api/v1/namespaces/{LEASE_NAMESPACE}") else namespace
    return ["--leader-elect", "--leader-election-namespace", lease_namespace, "--leader-election-id", LEASE_NAME]


def exists(api: client.ApiClient, path: str) -> bool:
    try:
        request_json(api, "GET", path)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


@contextlib.contextmanager
def controller(kubeconfig: str, workdir: Path, flags: list[str]) -> Iterator[Path]:
    """``python -m disvc.controller`` on free loopback ports, stopped (SIGTERM) on exit; yields its log."""
    log_path = workdir / "controller.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "disvc.controller", "--kubeconfig", kubeconfig,
             "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0",
             "--log-format", "json", *flags],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        step(f"controller started (pid {process.pid}, log: {log_path})")
        try:
            yield log_path
        finally:
            process.terminate()
            code = process.wait(timeout=30)
            step(f"controller stopped (exit code {code})")


def interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def make_workdir() -> Path:
    """A private folder for the kubeconfig (it holds a token) and the
    controller's log, removed when the demo exits however it stops."""
    path = Path(tempfile.mkdtemp(prefix="disvc-demo-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def wait_for_ctrl_c() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
