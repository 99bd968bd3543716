"""hack/fetch-kserve-crd.sh: a copy of KServe's CRD lands where the suite looks,
and anything else is refused (no network here: the --from path is tested)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "fetch-kserve-crd.sh"
CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: inferenceservices.serving.kserve.io
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISVC_CRD_CACHE": str(tmp_path / "cache"), "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_local_copy_of_the_crd_is_cached_for_the_suite(tmp_path: Path) -> None:
    source = tmp_path / "isvc.yaml"
    source.write_text(CRD)
    result = run(tmp_path, "--from", str(source))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cache" / "serving.kserve.io_inferenceservices.yaml").read_text() == CRD


def test_a_file_without_the_inferenceservice_crd_is_refused_and_nothing_cached(tmp_path: Path) -> None:
    source = tmp_path / "other.yaml"
    source.write_text(CRD.replace("inferenceservices", "trainedmodels"))
    result = run(tmp_path, "--from", str(source))
    assert result.returncode != 0
    assert "no InferenceService CRD" in result.stderr
    assert not (tmp_path / "cache" / "serving.kserve.io_inferenceservices.yaml").exists()
