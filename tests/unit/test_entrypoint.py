"""``python -m disvc.controller`` started with unusable settings says what is
wrong and exits 2, instead of a traceback: one ``Cannot start`` log line for
connection settings, argparse's usage line for a bad flag."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

NO_SERVERS = ["--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--log-format", "json"]

KUBECONFIG_HEAD = """\
apiVersion: v1
kind: Config
current-context: demo
contexts:
- name: demo
  context: {cluster: demo, user: demo}
users:
- name: demo
  user: {}
"""

BROKEN_KUBECONFIGS = {
    "not YAML": "apiVersion: v1\nclusters: [\n  - server: {\n",
    "YAML but not a mapping": "just a string\n",
    "a server URL that does not parse": KUBECONFIG_HEAD
    + 'clusters:\n- name: demo\n  cluster: {server: "https://[::1"}\n',
    "a CA that is not base64": KUBECONFIG_HEAD
    + "clusters:\n- name: demo\n  cluster:\n    server: https://127.0.0.1:6443\n"
    + "    certificate-authority-data: '!!!not-base64'\n",
    "a context naming no cluster": KUBECONFIG_HEAD + "clusters: []\n",
}


def run_controller(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "disvc.controller", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def assert_one_cannot_start_line(result: subprocess.CompletedProcess[str], mentions: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [error] = [line for line in lines if line["level"] == "error"]
    assert error["msg"] == "Cannot start"
    assert mentions in error["error"]
    assert "Traceback" not in output


def test_a_missing_kubeconfig_is_one_clear_error_and_exit_code_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"

    result = run_controller("--kubeconfig", str(missing), *NO_SERVERS)

    assert_one_cannot_start_line(result, str(missing))


@pytest.mark.parametrize("content", BROKEN_KUBECONFIGS.values(), ids=BROKEN_KUBECONFIGS.keys())
def test_a_broken_kubeconfig_is_one_clear_error_and_exit_code_2(tmp_path: Path, content: str) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(content)

    result = run_controller("--kubeconfig", str(kubeconfig), *NO_SERVERS)

    assert_one_cannot_start_line(result, str(kubeconfig))


@pytest.mark.parametrize(
    "flag",
    [["--workers", "0"], ["--metrics-bind-address", "nowhere"], ["--log-format", "xml"], ["--no-such-flag"]],
    ids=lambda flag: " ".join(flag),
)
def test_a_bad_flag_exits_2_with_the_usage_and_the_reason(flag: list[str]) -> None:
    result = run_controller(*flag)

    assert result.returncode == 2
    assert result.stderr.startswith("usage: disvc-controller")
    [reason] = [line for line in result.stderr.splitlines() if line.startswith("disvc-controller: error:")]
    assert flag[0] in reason
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", ["--metrics-bind-address", "--health-probe-bind-address"])
def test_a_port_already_taken_is_one_clear_error_and_exit_code_2(tmp_path: Path, flag: str) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        KUBECONFIG_HEAD + "clusters:\n- name: demo\n  cluster: {server: 'https://127.0.0.1:9'}\n"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        servers = {"--metrics-bind-address": "0", "--health-probe-bind-address": "0", flag: f"127.0.0.1:{port}"}
        result = run_controller(
            "--kubeconfig", str(kubeconfig), "--log-format", "json",
            *(part for option, address in servers.items() for part in (option, address)),
        )  # fmt: skip
    assert_one_cannot_start_line(result, f"cannot listen on 127.0.0.1:{port}")


UNUSABLE_SERVER_URLS = ["http://127.0.0.1:notaport", "notaurl", "ftp://127.0.0.1:6443", "https://:6443"]


@pytest.mark.parametrize("url", UNUSABLE_SERVER_URLS)
def test_an_unusable_server_url_names_kubeconfig_context_and_url(tmp_path: Path, url: str) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG_HEAD + f"clusters:\n- name: demo\n  cluster: {{server: {url!r}}}\n")

    result = run_controller("--kubeconfig", str(kubeconfig), *NO_SERVERS)

    assert_one_cannot_start_line(result, str(kubeconfig))
    error = next(json.loads(line) for line in result.stderr.splitlines() if '"Cannot start"' in line)["error"]
    assert "context demo" in error and repr(url) in error


def test_kubeconfig_from_the_environment_and_its_context_are_used_and_logged(tmp_path: Path) -> None:
    # $KUBECONFIG lists a missing file (skipped), then the real one; --context
    # picks a context that is not the current one, whose URL is unusable.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        KUBECONFIG_HEAD.replace(
            "contexts:\n", "contexts:\n- name: other\n  context: {cluster: other, user: demo}\n"
        )
        + "clusters:\n- name: demo\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
        + "- name: other\n  cluster: {server: 'ftp://elsewhere'}\n"
    )
    env = {**os.environ, "KUBECONFIG": os.pathsep.join([str(tmp_path / "missing"), str(kubeconfig)])}
    env.pop("KUBERNETES_SERVICE_HOST", None)

    result = subprocess.run(
        [sys.executable, "-m", "disvc.controller", "--context", "other", *NO_SERVERS],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip

    assert_one_cannot_start_line(result, "$KUBECONFIG")
    assert "context other" in result.stderr and "ftp://elsewhere" in result.stderr
