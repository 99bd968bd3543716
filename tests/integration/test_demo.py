"""The README's first command works: ``hack/demo.py`` (what ``hack/demo.sh``
runs once ``.venv`` exists) starts its own loopback API and the real
controller, applies the sample DISVC and prints what a user should see.

``substrate_only``: the demo brings its own loopback API, so on a real control
plane (``DISVC_TEST_KUBECONFIG``, ``KUBEBUILDER_ASSETS``) it would test
nothing that backend selects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT = 90.0


@pytest.mark.substrate_only
@pytest.mark.slow
def test_demo_prints_the_children_and_the_urls_of_the_sample_disvc() -> None:
    result = subprocess.run(
        [sys.executable, "hack/demo.py"],
        cwd=REPO, capture_output=True, text=True, timeout=DEMO_TIMEOUT, check=False,
    )
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    for expected in (
        "InferenceService  kserve-demo/sklearn-v2-iris-rest-v1-0 ",
        "Service           kserve-demo/sklearn-v2-iris-rest ",
        "Service           kserve-demo/sklearn-v2-iris-rest-v1 ",
        "host=sklearn-v2-iris-rest-kserve-demo.example.com",
        "url: http://sklearn-v2-iris-rest-kserve-demo.example.com\n",
        "address:\n      url: http://sklearn-v2-iris-rest-v1.kserve-demo.svc.cluster.local\n",
        "controller stopped (exit code 0)",
    ):
        assert expected in output, f"{expected!r} missing from the demo's output:\n{output}"
