"""The README's commands that need no cluster run as written.

Selection rule: every line of a code block fenced as ```` ```sh ```` whose
command starts with ``python -m disvc``, ``python hack/``, ``./hack/`` or
``hack/`` (comments after ``#`` dropped). Other lines (``kubectl``,
``docker``, ``curl``, ``pip``) need a cluster, a registry or the network and
are not run. A selected command is skipped only when ``SKIP`` names it, with
the reason; any other is run, so a new README section with such a command is
checked without touching this file.

How each runs: placeholders are filled in (``PATH`` and ``/tmp/kc``: a
kubeconfig of the README's own loopback API; ``disvc.yaml``: the sample
DISVC); ``python`` is this interpreter; the loopback API and the controller,
which serve until stopped, get free ports, must become ready (the API prints
its URL, the controller answers ``/readyz`` 200) and must exit 0 on SIGTERM;
any other command must exit 0.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shlex
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from disvc.testing.polling import eventually

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SAMPLE = REPO / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice.yaml"
SELECTED_PREFIXES = ("python -m disvc", "python hack/", "./hack/", "hack/")
SKIP = {
    "./hack/demo.sh": "installs .venv from PyPI; hack/demo.py runs in tests/integration/test_demo.py",
    "./hack/test.sh": "is the test suite",
    "hack/test.sh": "is the test suite",
    "hack/verify-manifests.sh": "runs tests/unit/test_manifests.py and test_crd.py, which the suite runs",
    "hack/test-envtest.sh": "needs KUBEBUILDER_ASSETS (etcd and kube-apiserver)",
    "hack/test-cluster.sh": "needs a cluster",
    "python hack/bench/": "a benchmark: minutes of CPU (hack/bench/README.md)",
    "python -m disvc render -f new.yaml --from old.yaml": "needs two manifests of one DISVC; "
    "tests/unit/test_render.py runs --from/--step for every strategy",
    "hack/build-installer.sh": "writes dist/install.yaml; tests/integration/test_installer.py runs it",
    "hack/fetch-kserve-crd.sh": "downloads from GitHub (tests/unit/test_fetch_kserve_crd.py covers it offline)",
}
APISERVER = "python -m disvc.testing.apiserver"
CONTROLLER = "python -m disvc.controller"
STARTUP_TIMEOUT = 60.0


def sh_commands(text: str) -> list[str]:
    """Selected commands of the ```sh blocks, in README order."""
    commands = []
    for block in re.findall(r"^ *```sh\n(.*?)^ *```", text, flags=re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            command = re.split(r"\s+#", line.strip(), maxsplit=1)[0].strip()
            if command.startswith(SELECTED_PREFIXES):
                commands.append(command)
    return commands


def skip_reason(command: str) -> str | None:
    return next((reason for prefix, reason in SKIP.items() if command.startswith(prefix)), None)


COMMANDS = sh_commands(README.read_text())


def argv(command: str, kubeconfig: Path) -> list[str]:
    words: list[str] = []
    for word in shlex.split(command):
        if words and words[-1] == "--router-port":
            word = "0"  # a fixed port may be taken on a shared machine
        words.append({"PATH": str(kubeconfig), "/tmp/kc": str(kubeconfig), "disvc.yaml": str(SAMPLE)}.get(word, word))
    if words[0] == "python":
        words[0] = sys.executable
    return words


@dataclass
class Server:
    """A README command that serves until stopped, with its output collected."""

    process: subprocess.Popen[str]
    lines: list[str]

    @classmethod
    def start(cls, words: list[str]) -> Server:
        process = subprocess.Popen(words, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        server = cls(process, [])
        threading.Thread(target=server._read, daemon=True).start()
        return server

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def test_the_readme_has_the_commands_this_test_is_for() -> None:
    assert any(c.startswith(APISERVER) for c in COMMANDS)
    assert any(c.startswith(CONTROLLER) for c in COMMANDS)
    assert any(c.startswith("python -m disvc render") for c in COMMANDS)


@pytest.fixture(scope="module")
def readme_loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The README's loopback API command, running; yields its kubeconfig."""
    [command] = [c for c in COMMANDS if c.startswith(APISERVER)]
    assert "--install-crds" in command, "a controller needs the CRDs to become ready"
    kubeconfig = tmp_path_factory.mktemp("readme") / "kubeconfig"
    server = Server.start(argv(command, kubeconfig))

    def serving() -> None:
        assert server.process.poll() is None, server.output()
        assert re.search(r"^http://127\.0\.0\.1:\d+$", server.output(), re.MULTILINE), server.output()

    eventually(serving, timeout=STARTUP_TIMEOUT, interval=0.1)
    assert kubeconfig.is_file()
    yield kubeconfig
    assert server.stop() == 0, server.output()


def probe(address: str, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def run_controller(words: list[str]) -> None:
    free_ports = ["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"]
    server = Server.start([*words, *free_ports, "--log-format", "json"])
    try:

        def probes_address() -> str:
            assert server.process.poll() is None, server.output()
            for line in list(server.lines):
                entry = json.loads(line) if line.startswith("{") else {}
                if entry.get("msg") == "Serving health probes":
                    return str(entry["address"])
            raise AssertionError(f"not serving probes yet: {server.output()}")

        address = eventually(probes_address, timeout=STARTUP_TIMEOUT, interval=0.1)

        def ready() -> None:
            assert probe(address, "/readyz") == 200, server.output()

        eventually(ready, timeout=STARTUP_TIMEOUT, interval=0.2)
    finally:
        code = server.stop()
    assert code == 0, server.output()


@pytest.mark.parametrize("command", [c for c in COMMANDS if not c.startswith(APISERVER)])
def test_readme_command_runs(command: str, readme_loopback: Path) -> None:
    reason = skip_reason(command)
    if reason:
        pytest.skip(reason)
    words = argv(command, readme_loopback)
    if command.startswith(CONTROLLER):
        run_controller(words)
        return
    result = subprocess.run(words, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def canonical(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def third_party_imports(directory: Path) -> set[str]:
    local = {path.stem for path in directory.glob("*.py")} | {"disvc"}
    modules = set()
    for path in directory.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in local and m not in sys.stdlib_module_names and m != "__future__"}


def test_the_readme_install_line_for_hack_bench_provides_every_module_it_imports() -> None:
    # The .venv of hack/demo.sh has only the testing extra; psutil was missing.
    [line] = [line for line in README.read_text().splitlines() if "pip install" in line and "bench" in line]
    extras = re.search(r"\.\[([\w,]+)\]", line)
    assert extras, line
    wanted = set(extras.group(1).split(","))
    provided = set()
    for requirement in importlib.metadata.requires("disvc") or []:
        extra = re.search(r'extra == "(\w+)"', requirement)
        if extra is None or extra.group(1) in wanted:
            provided.add(canonical(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]))
    distributions = importlib.metadata.packages_distributions()

    missing = {
        module
        for module in third_party_imports(REPO / "hack" / "bench")
        if not {canonical(d) for d in distributions.get(module, [])} & provided
    }

    assert not missing, f"hack/bench imports {missing}, which {line.split('#')[0].strip()!r} does not install"
