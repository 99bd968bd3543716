"""``kubectl disvc``, driven as a user drives it: kubectl finds the plugin
``kubectl-disvc`` on ``PATH`` and runs it against the test's API (loopback
or a real kube-apiserver) with the real controller beside it.

The ``kubectl-disvc`` put on ``PATH`` is a launcher of the console script's
entry point (``disvc.cli.__main__:main``, as ``setup.cfg`` declares it) for
this source tree, so the test runs the code under test whatever is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from disvc.builders import history
from disvc.cli import rollout
from disvc.cli.errors import CliError
from disvc.cli.kube import Api
from disvc.testing import prometheus_api
from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub
from disvc.testing.prometheus_api import ScriptedPrometheus

from .harness import Cluster, RunningController, StartController, condition, disvc_manifest

NAME = "model"
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
SAMPLE = REPO / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice_canary.yaml"
TEMPLATE = yaml.safe_load(SAMPLE.read_text())["spec"]["inferenceService"]
KUBECTL = shutil.which("kubectl")
Obj = dict[str, Any]
Run = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH (plugins run through it)")


def manifest(version: str, rollout_spec: Obj | None = None) -> Obj:
    # the old generation goes at the switch, so each step settles as Converged
    return disvc_manifest(NAME, TEMPLATE, 2, version, rollout_spec)


def apply(kube: KubeEnv, doc: Obj) -> None:
    kube.apply_yaml(yaml.safe_dump(doc))


def plugin_path(directory: Path) -> dict[str, str]:
    """An environment whose PATH holds a ``kubectl-disvc`` for this tree."""
    directory.mkdir(exist_ok=True)
    launcher = directory / "kubectl-disvc"
    launcher.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from disvc.cli.__main__ import main\n"
        "sys.exit(main())\n"
    )
    launcher.chmod(0o755)
    env = {**os.environ, "PATH": f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("KUBECONFIG", None)
    return env


@pytest.fixture
def kubectl_disvc(kube: KubeEnv, tmp_path: Path) -> Run:
    """``kubectl_disvc(*args)``: ``kubectl disvc ARGS -n NS --kubeconfig KC``."""
    env = plugin_path(tmp_path / "bin")

    def run(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = [str(KUBECTL), "disvc", *args, "-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    return run


def progress(cluster: Cluster) -> str | None:
    return (condition(cluster.disvc(NAME), "Progressing") or {}).get("reason")


def settled(cluster: Cluster, reason: str, active: str) -> None:
    disvc = cluster.disvc(NAME)
    assert (condition(disvc, "Progressing") or {}).get("reason") == reason
    assert (disvc.get("status") or {}).get("activeGeneration") == active


def isvc_names(cluster: Cluster) -> set[str]:
    return {n.removeprefix(f"{NAME}-") for n in cluster.isvcs()}


def test_the_plugin_is_the_packages_console_script() -> None:
    import configparser

    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    scripts = setup["options.entry_points"]["console_scripts"]
    assert "kubectl-disvc = disvc.cli.__main__:main" in scripts.splitlines()


def test_status_watch_follows_a_canary_from_start_to_promote(
    kube: KubeEnv,
    controller: RunningController,
    kserve: KServeStub,
    cluster: Cluster,
    kubectl_disvc: Run,
    tmp_path: Path,
) -> None:
    canary = {"canaryTrafficPercent": 25}
    apply(kube, manifest("v1", canary))
    eventually(lambda: settled(cluster, "Converged", "v1"), TIMEOUT)

    refused = kubectl_disvc("promote", NAME)
    assert refused.returncode == 1
    assert "no rollout under way" in refused.stderr

    env = plugin_path(tmp_path / "bin")
    command = [
        str(KUBECTL),
        "disvc",
        "status",
        NAME,
        "-w",
        "--timeout",
        "90",
        "-n",
        kube.namespace,
        "--kubeconfig",
        kube.kubeconfig,
    ]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as watcher:
        try:
            apply(kube, manifest("v2", canary))
            eventually(lambda: settled(cluster, "CanaryRunning", "v1"), TIMEOUT)
            shown = kubectl_disvc("status", NAME)
            assert shown.returncode == 0, shown.stderr
            assert "canary: v2 takes 25% of external traffic" in shown.stdout
            assert [line.split()[:5] for line in shown.stdout.splitlines() if line.startswith(("v1 ", "v2 "))] == [
                ["v1", "2", "2/2", "75%", "serving"],
                ["v2", "2", "2/2", "25%", "canary"],
            ]
            assert f"kubectl disvc promote {NAME}" in shown.stdout

            promoted = kubectl_disvc("promote", NAME)
            assert promoted.returncode == 0, promoted.stderr
            assert "promoted: removed spec.rollout.canaryTrafficPercent (was 25)" in promoted.stdout
            out, err = watcher.communicate(timeout=90)
        finally:
            if watcher.poll() is None:
                watcher.kill()
    assert watcher.returncode == 0, err
    assert "canary: v2 takes 25% of external traffic" in out
    assert out.rstrip().endswith("rollout complete, v2 serves all traffic")
    settled(cluster, "Converged", "v2")
    assert "canaryTrafficPercent" not in (cluster.disvc(NAME)["spec"].get("rollout") or {})

    again = kubectl_disvc("promote", NAME)
    assert again.returncode == 1
    assert "is not a canary" in again.stderr


def test_abort_puts_the_serving_template_back_and_the_canary_goes(
    kube: KubeEnv, controller: RunningController, kserve: KServeStub, cluster: Cluster, kubectl_disvc: Run
) -> None:
    canary = {"canaryTrafficPercent": 10}
    apply(kube, manifest("v1", canary))
    eventually(lambda: settled(cluster, "Converged", "v1"), TIMEOUT)
    nothing = kubectl_disvc("abort", NAME)
    assert nothing.returncode == 1
    assert "no rollout to abort" in nothing.stderr

    apply(kube, manifest("v2", canary))
    eventually(lambda: settled(cluster, "CanaryRunning", "v1"), TIMEOUT)
    aborted = kubectl_disvc("abort", NAME)
    assert aborted.returncode == 0, aborted.stderr
    assert "aborted: spec back to v1 (templateHash" in aborted.stdout

    eventually(lambda: settled(cluster, "Converged", "v1"), TIMEOUT)
    eventually(lambda: _equal(isvc_names(cluster), {"v1-0", "v1-1"}), TIMEOUT)
    assert cluster.disvc(NAME)["spec"]["annotations"] == {"version": "v1"}
    listed = kubectl_disvc("history", NAME)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == ["v1"]
    assert rows[0][-2:] == ["serving,", "spec"]


def test_rollback_and_history_from_status_history(
    kube: KubeEnv, controller: RunningController, kserve: KServeStub, cluster: Cluster, kubectl_disvc: Run
) -> None:
    empty = kubectl_disvc("history", NAME)
    assert empty.returncode == 1
    assert 'not found in namespace "' + kube.namespace + '"' in empty.stderr

    apply(kube, manifest("v1"))
    eventually(lambda: settled(cluster, "Converged", "v1"), TIMEOUT)
    apply(kube, manifest("v2"))
    eventually(lambda: settled(cluster, "Converged", "v2"), TIMEOUT)

    rolled = kubectl_disvc("rollback", NAME)
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back to v1 (templateHash" in rolled.stdout
    assert "a new generation rolls out with it" in rolled.stdout
    eventually(lambda: settled(cluster, "Converged", "v3"), TIMEOUT)
    assert cluster.disvc(NAME)["spec"]["annotations"] == {"version": "v1"}

    listed = kubectl_disvc("history", NAME)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0][:2] == ["GENERATION", "TEMPLATE-HASH"]
    assert [row[0] for row in rows[1:]] == ["v1", "v2", "v3"]
    assert "version=v1" in rows[1] and "version=v2" in rows[2]
    assert rows[3][-2:] == ["serving,", "spec"]
    template = kubectl_disvc("history", NAME, "--generation", "v2")
    assert yaml.safe_load(template.stdout)["annotations"] == {"version": "v2"}

    same = kubectl_disvc("rollback", NAME, "--to", "v1")
    assert same.returncode == 1
    assert "already asks for v1's template" in same.stderr
    unknown = kubectl_disvc("rollback", NAME, "--to", "v9")
    assert unknown.returncode == 1
    assert "no kept template for generation v9 (kept: v1, v2, v3)" in unknown.stderr
    to_v2 = kubectl_disvc("rollback", NAME, "--to", "v2")
    assert to_v2.returncode == 0, to_v2.stderr
    eventually(lambda: settled(cluster, "Converged", "v4"), TIMEOUT)
    assert cluster.disvc(NAME)["spec"]["annotations"] == {"version": "v2"}


def test_a_rollback_read_before_a_change_is_refused_and_changes_nothing(
    kube: KubeEnv, controller: RunningController, kserve: KServeStub, cluster: Cluster
) -> None:
    apply(kube, manifest("v1"))
    eventually(lambda: settled(cluster, "Converged", "v1"), TIMEOUT)
    apply(kube, manifest("v2"))
    eventually(lambda: settled(cluster, "Converged", "v2"), TIMEOUT)
    api = Api(kube.api_client, kube.namespace)
    read = api.get_with_history(NAME)
    cluster.merge_patch_disvc(NAME, {"spec": {"replicas": 3}})  # someone else writes meanwhile

    with pytest.raises(CliError, match="changed while this command ran; nothing was changed"):
        api.json_patch(NAME, rollout.restore_patch(read, history.target(read)))
    spec = cluster.disvc(NAME)["spec"]
    assert (spec["annotations"], spec["replicas"]) == ({"version": "v2"}, 3)


def test_status_watch_exit_codes_say_how_the_rollout_ended(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, tmp_path: Path
) -> None:
    # nothing plays KServe here: no ISVC ever becomes Ready
    apply(kube, manifest("v1", {"progressDeadlineSeconds": 600}))
    eventually(lambda: _equal(isvc_names(cluster), {"v1-0", "v1-1"}), TIMEOUT)
    env = {**plugin_path(tmp_path / "bin"), "KUBECONFIG": kube.kubeconfig}  # $KUBECONFIG, as kubectl reads it

    def watch(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(KUBECTL), "disvc", "-n", kube.namespace, "status", NAME, "-w", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    timed_out = watch("--timeout", "1")
    assert timed_out.returncode == 3, timed_out.stderr
    assert "timed out after 1s; the rollout goes on" in timed_out.stdout
    assert "600s per new ISVC; model-v1-0" in timed_out.stdout

    cluster.merge_patch_disvc(NAME, {"spec": {"rollout": {"progressDeadlineSeconds": 1}}})
    stalled = watch("--timeout", "30")
    assert stalled.returncode == 1, stalled.stderr
    assert "rollout stopped: ProgressDeadlineExceeded" in stalled.stdout


def _equal(left: object, right: object) -> None:
    assert left == right


def test_retry_runs_a_failed_canary_analysis_again(
    kube: KubeEnv, start_controller: StartController, kserve: KServeStub, cluster: Cluster, kubectl_disvc: Run
) -> None:
    prometheus = ScriptedPrometheus(lambda query: prometheus_api.value("1")).start()
    try:
        start_controller(prometheus_url=prometheus.url)
        canary = {
            "canaryTrafficPercent": 10,
            "scaleDownDelaySeconds": 0,
            "analysis": {"steps": [50], "interval": "1s", "metrics": [{"name": "errors", "query": "up", "max": 0.5}]},
        }
        apply(kube, manifest("v1", canary))
        eventually(lambda: settled(cluster, "Converged", "v1"), TIMEOUT)
        nothing = kubectl_disvc("retry", NAME)
        assert nothing.returncode == 1
        assert "no failed canary analysis to retry" in nothing.stderr

        apply(kube, manifest("v2", canary))
        eventually(lambda: settled(cluster, "AnalysisFailed", "v1"), TIMEOUT)
        shown = kubectl_disvc("status", NAME)
        assert "aborted: analysis of v2 failed at step 1 of 1 at 50%" in shown.stdout
        assert f"kubectl disvc retry {NAME}" in shown.stdout

        prometheus.script = lambda query: prometheus_api.value("0")
        retried = kubectl_disvc("retry", NAME)
        assert retried.returncode == 0, retried.stderr
        assert "disvc.serving.kserve.io/analysis-retry=1" in retried.stdout
        eventually(lambda: settled(cluster, "Converged", "v2"), TIMEOUT)
    finally:
        prometheus.stop()
