"""kubectl against the session's API: what a user types, and what they see.

Each test drives the installed ``kubectl`` binary with a kubeconfig for the
``kube`` fixture's backend, so the same commands run against the loopback
API and a real kube-apiserver; what they print must not tell the two apart.
Every kubectl run gets its own discovery cache, as a fresh user would.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from disvc.testing.fixtures import KubeEnv, eventually, request_json

from .objects import DISVC_VERSION, DISVCS, KSERVE, disvc

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (not on PATH)")

TIMEOUT = 60
"""Seconds any single kubectl command may take."""


@dataclass(slots=True)
class Kubectl:
    """Runs kubectl against one namespace of the session's API."""

    kubeconfig: str
    namespace: str
    cache_dir: Path

    def command(self, *args: str) -> list[str]:
        assert KUBECTL is not None
        return [KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}",
                f"--namespace={self.namespace}", *args]

    @staticmethod
    def env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(*args), input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
            env=self.env(), check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def fresh(self, cache_dir: Path) -> Kubectl:
        """The same, with an empty discovery cache (a user who has not looked yet)."""
        return Kubectl(self.kubeconfig, self.namespace, cache_dir)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env()
        )


@pytest.fixture
def kubectl(kube: KubeEnv, tmp_path: Path) -> Kubectl:
    return Kubectl(kube.kubeconfig, kube.namespace, tmp_path / "kubectl-cache")


def manifest(tmp_path: Path, *objects: dict[str, Any], name: str = "manifest.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return str(path)


def table(output: str) -> list[list[str]]:
    """kubectl's columns: cells are separated by two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]


def disvc_path(kube: KubeEnv, name: str) -> str:
    return f"/apis/{KSERVE}/{DISVC_VERSION}/namespaces/{kube.namespace}/{DISVCS}/{name}"


def test_api_resources_lists_disvc_with_its_short_name_verbs_and_category(kubectl: Kubectl) -> None:
    rows = table(kubectl("api-resources", f"--api-group={KSERVE}", "-o", "wide"))
    assert rows[0][:5] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    row = next(r for r in rows if r[0] == DISVCS)
    assert row[1:5] == ["disvc", f"{KSERVE}/{DISVC_VERSION}", "true", "DistributedInferenceService"]
    verbs = next(cell for cell in row if "deletecollection" in cell)
    assert sorted(re.findall(r"[a-z]+", verbs)) == [
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    ]
    assert "kserve" in row[-1]


def test_api_resources_lists_built_in_kinds(kubectl: Kubectl) -> None:
    rows = {r[0]: r for r in table(kubectl("api-resources", "--api-group="))}
    assert rows["services"][1:] == ["svc", "v1", "true", "Service"]
    assert rows["namespaces"][1:] == ["ns", "v1", "false", "Namespace"]


def test_apply_creates_configures_then_leaves_unchanged(kubectl: Kubectl, tmp_path: Path) -> None:
    path = manifest(tmp_path, disvc("web", replicas=1))
    assert kubectl("apply", "-f", path).strip() == f"distributedinferenceservice.{KSERVE}/web created"
    path = manifest(tmp_path, disvc("web", replicas=2))
    assert kubectl("apply", "-f", path).strip() == f"distributedinferenceservice.{KSERVE}/web configured"
    assert kubectl("apply", "-f", path).strip() == f"distributedinferenceservice.{KSERVE}/web unchanged"
    assert kubectl("get", "disvc", "web", "-o", "jsonpath={.spec.replicas}") == "2"


def test_apply_server_side_records_kubectl_as_field_manager(kubectl: Kubectl, tmp_path: Path) -> None:
    path = manifest(tmp_path, disvc("web", replicas=2))
    assert kubectl("apply", "--server-side", "-f", path).strip() == (
        f"distributedinferenceservice.{KSERVE}/web serverside-applied"
    )
    managers = kubectl("get", "disvc", "web", "-o", "jsonpath={.metadata.managedFields[*].manager}")
    assert managers.split() == ["kubectl"]
    assert kubectl("get", "disvc", "web", "-o", "jsonpath={.spec.replicas}") == "2"


def test_apply_refuses_a_misspelled_field_and_names_it(kubectl: Kubectl, tmp_path: Path) -> None:
    typo = disvc("web")
    typo["spec"]["replicaz"] = 2
    done = kubectl.run("apply", "-f", manifest(tmp_path, typo), check=False)
    assert done.returncode != 0
    assert 'unknown field "spec.replicaz"' in done.stderr
    assert kubectl.run("get", "disvc", "web", check=False).returncode != 0


def test_apply_creates_a_built_in_kind_and_merges_its_lists(kubectl: Kubectl, tmp_path: Path) -> None:
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "front"},
        "spec": {"selector": {"app": "front"}, "ports": [{"name": "http", "port": 80}]},
    }
    assert kubectl("apply", "-f", manifest(tmp_path, service)).strip() == "service/front created"
    service["spec"]["ports"].append({"name": "grpc", "port": 81})
    assert kubectl("apply", "-f", manifest(tmp_path, service)).strip() == "service/front configured"
    rows = table(kubectl("get", "svc", "front"))
    assert rows[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert rows[1][:2] == ["front", "ClusterIP"]
    assert rows[1][3:5] == ["<none>", "80/TCP,81/TCP"]


def test_get_prints_the_crd_printer_columns(kubectl: Kubectl, kube: KubeEnv) -> None:
    kube.apply_yaml(yaml.safe_dump(disvc("web", replicas=3)))
    rows = table(kubectl("get", "disvc"))
    assert rows[0] == ["NAME", "URL", "READY", "REPLICAS", "READY REPLICAS", "GENERATION", "PROGRESS", "AGE"]
    name, *cells = rows[1]
    assert name == "web"
    assert "3" in cells
    assert re.fullmatch(r"\d+s", cells[-1])
    wide = table(kubectl("get", "disvc", "-o", "wide"))
    assert wide[0][-2:] == ["STRATEGY", "AGE"], "priority-1 columns show only with -o wide"


def test_get_namespace_shows_its_status(kubectl: Kubectl, kube: KubeEnv) -> None:
    rows = table(kubectl("get", "namespace", kube.namespace))
    assert rows[0] == ["NAME", "STATUS", "AGE"]
    assert rows[1][:2] == [kube.namespace, "Active"]


def test_get_watch_prints_a_line_per_change(kubectl: Kubectl, kube: KubeEnv) -> None:
    kube.apply_yaml(yaml.safe_dump(disvc("web", replicas=1)))
    watch = kubectl.start("get", "disvc", "web", "--watch")
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in watch.stdout or ()], daemon=True)
    reader.start()
    try:
        assert lines.get(timeout=TIMEOUT).split()[:1] == ["NAME"]
        assert lines.get(timeout=TIMEOUT).split()[:2] == ["web", "1"]
        kubectl("patch", "disvc", "web", "--type=merge", "-p", '{"spec":{"replicas":4}}')
        assert lines.get(timeout=TIMEOUT).split()[:2] == ["web", "4"]
    finally:
        watch.kill()
        watch.wait()


def _scaled_event(kube: KubeEnv, created: dict[str, Any]) -> None:
    """An Event about ``created``, as the controller would record one."""
    kube.core.create_namespaced_event(kube.namespace, {
        "metadata": {"name": f"{created['metadata']['name']}.first"},
        "involvedObject": {
            "apiVersion": f"{KSERVE}/{DISVC_VERSION}", "kind": "DistributedInferenceService",
            "name": created["metadata"]["name"], "namespace": kube.namespace, "uid": created["metadata"]["uid"],
        },
        "reason": "Scaled", "message": "two replicas now", "type": "Normal",
        "source": {"component": "disvc-controller"},
        "firstTimestamp": created["metadata"]["creationTimestamp"],
        "lastTimestamp": created["metadata"]["creationTimestamp"],
        "count": 1,
    })


def test_describe_shows_the_spec_and_the_events(kubectl: Kubectl, kube: KubeEnv) -> None:
    _scaled_event(kube, kube.apply_yaml(yaml.safe_dump(disvc("web", replicas=2)))[0])
    out = kubectl("describe", "disvc", "web")
    assert re.search(r"^Name:\s+web$", out, re.MULTILINE)
    assert re.search(r"^Kind:\s+DistributedInferenceService$", out, re.MULTILINE)
    assert re.search(r"^\s+Replicas:\s+2$", out, re.MULTILINE)
    assert re.search(r"Normal\s+Scaled\s+.*disvc-controller\s+two replicas now", out)


def test_get_events_shows_what_happened_to_which_object(kubectl: Kubectl, kube: KubeEnv) -> None:
    _scaled_event(kube, kube.apply_yaml(yaml.safe_dump(disvc("web", replicas=2)))[0])
    rows = table(kubectl("get", "events"))
    assert rows[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert rows[1][1:] == ["Normal", "Scaled", "distributedinferenceservice/web", "two replicas now"]
    assert re.fullmatch(r"\d+s", rows[1][0])


def test_scale_sets_the_replicas(kubectl: Kubectl, kube: KubeEnv) -> None:
    kube.apply_yaml(yaml.safe_dump(disvc("web", replicas=1)))
    assert kubectl("scale", "disvc", "web", "--replicas=3").strip() == (
        f"distributedinferenceservice.{KSERVE}/web scaled"
    )
    assert kubectl("get", "disvc", "web", "-o", "jsonpath={.spec.replicas}") == "3"


def test_patch_by_merge_json_and_strategic_merge(kubectl: Kubectl, kube: KubeEnv, tmp_path: Path) -> None:
    kube.apply_yaml(yaml.safe_dump(disvc("web", replicas=1)))
    patched = f"distributedinferenceservice.{KSERVE}/web patched"
    assert kubectl("patch", "disvc", "web", "--type=merge", "-p", '{"spec":{"replicas":2}}').strip() == patched
    assert kubectl("patch", "disvc", "web", "--type=json",
                   "-p", '[{"op":"replace","path":"/spec/replicas","value":5}]').strip() == patched
    assert kubectl("get", "disvc", "web", "-o", "jsonpath={.spec.replicas}") == "5"
    unchanged = kubectl("patch", "disvc", "web", "--type=merge", "-p", '{"spec":{"replicas":5}}')
    assert unchanged.strip() == f"distributedinferenceservice.{KSERVE}/web patched (no change)"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "front"},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    kubectl("apply", "-f", manifest(tmp_path, service))
    assert kubectl("patch", "service", "front", "-p", '{"spec":{"ports":[{"port":81,"name":"grpc"}]}}').strip() == (
        "service/front patched"
    )
    ports = kubectl("get", "service", "front", "-o", "jsonpath={.spec.ports[*].port}")
    assert sorted(ports.split()) == ["80", "81"]


def test_delete_waits_for_finalizers_then_reports_deleted(kubectl: Kubectl, kube: KubeEnv) -> None:
    body = disvc("web")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    kube.apply_yaml(yaml.safe_dump(body))
    deleting = kubectl.start("delete", "disvc", "web", "--wait", f"--timeout={TIMEOUT}s")
    try:
        def marked() -> None:
            assert request_json(kube.api_client, "GET", disvc_path(kube, "web"))["metadata"].get("deletionTimestamp")

        eventually(marked, timeout=TIMEOUT)
        assert deleting.poll() is None, "kubectl returned while a finalizer still held the object"
        request_json(kube.api_client, "PATCH", disvc_path(kube, "web"), body={"metadata": {"finalizers": None}},
                     content_type="application/merge-patch+json")
        out, err = deleting.communicate(timeout=TIMEOUT)
    finally:
        if deleting.poll() is None:
            deleting.kill()
            deleting.wait()
    assert deleting.returncode == 0, err
    assert out.strip() == f'distributedinferenceservice.{KSERVE} "web" deleted'
    gone = kubectl.run("get", "disvc", "web", check=False)
    assert gone.returncode == 1
    assert f'distributedinferenceservices.{KSERVE} "web" not found' in gone.stderr


def test_explain_describes_the_spec_fields(kubectl: Kubectl) -> None:
    out = kubectl("explain", "disvc.spec")
    assert re.search(rf"^GROUP:\s+{re.escape(KSERVE)}$", out, re.MULTILINE)
    assert re.search(r"^KIND:\s+DistributedInferenceService$", out, re.MULTILINE)
    assert re.search(rf"^VERSION:\s+{DISVC_VERSION}$", out, re.MULTILINE)
    assert re.search(r"^FIELD:\s+spec\s+<Object>", out, re.MULTILINE)
    assert re.search(r"^\s+replicas\s+<integer>$", out, re.MULTILINE)
    assert re.search(r"^\s+inferenceService\s+<Object>", out, re.MULTILINE)


def test_explain_a_built_in_kind(kubectl: Kubectl) -> None:
    out = kubectl("explain", "service.spec.ports")
    assert re.search(r"^KIND:\s+Service$", out, re.MULTILINE)
    assert re.search(r"^\s+port\s+<integer> -required-$", out, re.MULTILINE)


@pytest.fixture
def widget_crd(kubectl: Kubectl, kube: KubeEnv, tmp_path: Path) -> Iterator[str]:
    """A small CRD of this test's own, deleted afterwards; yields its group."""
    group = f"{kube.namespace}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
            }}}],
        },
    }
    kubectl("apply", "-f", manifest(tmp_path, crd, name="crd.yaml"))
    yield group
    kubectl.run("delete", "crd", f"widgets.{group}", "--ignore-not-found", check=False)


def test_a_new_crd_is_usable_at_once_and_gone_once_deleted(
    kubectl: Kubectl, widget_crd: str, tmp_path: Path
) -> None:
    widget = {"apiVersion": f"{widget_crd}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}
    def served(expected: bool) -> None:
        assert (kubectl.run("get", "wdg", check=False).returncode == 0) == expected

    eventually(lambda: served(True), timeout=TIMEOUT, interval=0.5)
    assert kubectl("apply", "-f", manifest(tmp_path, widget)).strip() == f"widget.{widget_crd}/w created"
    rows = table(kubectl("get", "wdg"))
    assert rows[0] == ["NAME", "AGE"]
    assert rows[1][0] == "w"
    assert re.search(r"^\s+size\s+<integer>$", kubectl("explain", "wdg.spec"), re.MULTILINE)
    kubectl("delete", "crd", f"widgets.{widget_crd}")
    eventually(lambda: served(False), timeout=TIMEOUT, interval=0.5)
    newcomer = kubectl.fresh(tmp_path / "newcomer-cache")
    assert 'the server doesn\'t have a resource type "wdg"' in newcomer.run("get", "wdg", check=False).stderr
