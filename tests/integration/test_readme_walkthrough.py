"""The README's kubectl walk-through reaches Ready and answers curl.

A new user's worst stumble was this walk-through staying ``Scaling``
forever: nothing played KServe. Here it runs as the README has it, each
command a process of its own: the loopback API with ``--data-plane``, the
controller (``python -m disvc.controller``), ``kubectl`` for the samples and
the wait, and ``curl`` for the seed's request through the router.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from disvc.testing.polling import eventually

pytest.importorskip("kserve", reason="needs the dataplane extra: pip install -e '.[dataplane]'")

REPO = Path(__file__).resolve().parents[2]
ROUTER = re.compile(r"router on (http://127\.0\.0\.1:\d+)")


class Process:
    """A long-running command with its output gathered in a file."""

    def __init__(self, words: list[str], log: Path) -> None:
        self.log = log
        self._file = log.open("w")
        self.process = subprocess.Popen(words, cwd=REPO, stdout=self._file, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        self.process.terminate()
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._file.close()
        return code


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The README's first two terminals: the loopback API with its data plane,
    and the controller against it. Yields (kubeconfig, router URL)."""
    kubeconfig = tmp_path / "kc"
    api = Process(
        [sys.executable, "-m", "disvc.testing.apiserver", "--port", "0", "--kubeconfig-out", str(kubeconfig),
         "--install-crds", "--data-plane", "--router-port", "0"],
        tmp_path / "apiserver.log",
    )  # fmt: skip

    def router_url() -> str:
        assert api.process.poll() is None, api.output()
        found = ROUTER.search(api.output())
        assert found, api.output()
        return found.group(1)

    controller = None
    try:
        url = eventually(router_url, timeout=60, interval=0.2)
        controller = Process(
            [sys.executable, "-m", "disvc.controller", "--kubeconfig", str(kubeconfig),
             "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"],
            tmp_path / "controller.log",
        )  # fmt: skip
        yield kubeconfig, url
    finally:
        if controller is not None:
            assert controller.stop() == 0, controller.output()
        assert api.stop() == 0, api.output()
    assert "Traceback" not in api.output(), api.output()


@pytest.mark.substrate_only
@pytest.mark.slow
def test_the_kubectl_walk_through_reaches_ready_and_answers_curl(local_cluster: tuple[Path, str]) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    kubeconfig, router = local_cluster

    def run(*words: str, timeout: float = 60) -> str:
        result = subprocess.run(
            list(words), cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
            env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin:/usr/local/bin"},
        )  # fmt: skip
        assert result.returncode == 0, f"{' '.join(words)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    run("kubectl", "create", "namespace", "kserve-demo")
    run("kubectl", "apply", "-k", "config/samples")
    run("kubectl", "wait", "-n", "kserve-demo", "--for=condition=Ready", "disvc", "--all", "--timeout=180s",
        timeout=200)  # fmt: skip
    name = "sklearn-v2-iris-rest"
    port = router.rsplit(":", 1)[1]
    answer = run(
        "curl", "-sS", "--fail", "-H", f"Host: {name}-kserve-demo.example.com",
        "-H", "Content-Type: application/json", "-d", "@config/samples/requests/iris-input-v2.json",
        f"http://127.0.0.1:{port}/v2/models/{name}/infer",
    )  # fmt: skip
    assert json.loads(answer)["outputs"][0]["data"] == [1, 1], answer
