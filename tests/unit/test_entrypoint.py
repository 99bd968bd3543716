"""``python -m disvc.controller`` started without usable connection settings
says what is wrong in one line and exits 2, instead of a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_a_missing_kubeconfig_is_one_clear_error_and_exit_code_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    result = subprocess.run(
        [sys.executable, "-m", "disvc.controller", "--kubeconfig", str(missing),
         "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--log-format", "json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 2
    lines = [json.loads(line) for line in (result.stdout + result.stderr).splitlines() if line.startswith("{")]
    [error] = [line for line in lines if line["level"] == "error"]
    assert error["msg"] == "Cannot start"
    assert str(missing) in error["error"]
    assert "Traceback" not in result.stdout + result.stderr
