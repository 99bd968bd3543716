"""``hack/test-cluster.sh`` and ``hack/test-envtest.sh`` name what is wrong
with what they were given: a missing kubeconfig or assets folder by its
path, not as an unset variable. (Only refusals are run here: an accepted
argument would start the whole suite.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DISVC_TEST_KUBECONFIG", "KUBEBUILDER_ASSETS"}}
    return subprocess.run(
        [str(REPO / "hack" / script), *args], capture_output=True, text=True, env=env, check=False, timeout=30
    )


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stderr.strip().splitlines()[-1]


def test_cluster_script_names_a_kubeconfig_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    done = run("test-cluster.sh", str(missing))
    assert done.returncode == 2
    assert last_line(done) == f"cannot read kubeconfig {missing}: no such file"


@pytest.mark.parametrize("args", [(), ("tests/unit",), ("-x",)], ids=["nothing", "a test folder", "an option"])
def test_cluster_script_without_a_kubeconfig_says_how_to_give_one(args: tuple[str, ...]) -> None:
    done = run("test-cluster.sh", *args)
    assert done.returncode == 2
    assert last_line(done) == "no kubeconfig: pass its path first, or set DISVC_TEST_KUBECONFIG"


def test_envtest_script_names_the_binary_missing_from_the_folder_given(tmp_path: Path) -> None:
    done = run("test-envtest.sh", str(tmp_path))
    assert done.returncode == 2
    assert last_line(done) == (
        f"{tmp_path}/etcd not found or not executable (the folder needs etcd and kube-apiserver)"
    )


def test_envtest_script_names_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    done = run("test-envtest.sh", str(tmp_path / "nonexistent"))
    assert done.returncode == 2
    assert last_line(done) == f"no such envtest assets folder: {tmp_path / 'nonexistent'}"


@pytest.mark.parametrize("args", [(), ("tests/integration",), ("-x",)], ids=["nothing", "a test folder", "an option"])
def test_envtest_script_without_binaries_says_how_to_give_them(args: tuple[str, ...]) -> None:
    done = run("test-envtest.sh", *args)
    assert done.returncode == 2
    assert last_line(done) == "no envtest binaries: pass their folder first, or set KUBEBUILDER_ASSETS"
