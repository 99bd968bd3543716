"""The README's metrics table lists exactly what ``/metrics`` exports.

A running controller (``python -m disvc.controller`` against a loopback API
with the CRDs installed) is scraped once it is ready, and the metric names
and types it declares are compared with the table under ``## Metrics``, in
both directions: no undocumented metric, no documented one that is gone.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from kubernetes import config
from prometheus_client.parser import text_string_to_metric_families

from disvc.testing.apiserver import ApiServer
from disvc.testing.crds import install_crds
from disvc.testing.polling import eventually

README = Path(__file__).resolve().parents[2] / "README.md"
STARTUP_TIMEOUT = 60.0


def documented() -> dict[str, str]:
    """metric name -> type, from the table of the README's Metrics section."""
    section = README.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_:]+)` \| (\w+) \|", section, flags=re.MULTILINE)
    return dict(rows)


def exported_by_a_running_controller(tmp_path: Path) -> dict[str, str]:
    """metric name (counters with ``_total``) -> type, as scraped from /metrics."""
    with ApiServer() as server:
        kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
        api = config.new_client_from_config(config_file=kubeconfig)
        install_crds(api)
        process = subprocess.Popen(
            [sys.executable, "-m", "disvc.controller", "--kubeconfig", kubeconfig,
             "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0",
             "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            addresses: dict[str, str] = {}
            for line in process.stderr:
                entry = json.loads(line) if line.startswith("{") else {}
                if entry.get("msg") in ("Serving metrics", "Serving health probes"):
                    addresses[entry["msg"]] = entry["address"]
                if entry.get("msg") == "Caches synced":
                    break
            metrics_address = addresses["Serving metrics"]

            def scrape() -> str:
                with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=5) as response:
                    text: str = response.read().decode()
                assert "disvc_managed" in text
                return text

            text = eventually(scrape, timeout=STARTUP_TIMEOUT, interval=0.2)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
            api.close()
    families = {}
    for family in text_string_to_metric_families(text):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        families[name] = family.type
    # prometheus_client adds a <name>_created gauge per counter and histogram:
    # the creation time, not a metric of ours.
    created = {f"{name.removesuffix('_total')}_created" for name, kind in families.items() if kind != "gauge"}
    return {name: kind for name, kind in families.items() if name not in created}


def test_the_readme_lists_every_exported_metric_with_its_type_and_nothing_else(tmp_path: Path) -> None:
    readme = documented()
    assert len(readme) > 10, "the README's metrics table was not found"

    exported = exported_by_a_running_controller(tmp_path)

    assert sorted(set(exported) - set(readme)) == [], "exported but not in the README"
    assert sorted(set(readme) - set(exported)) == [], "in the README but not exported"
    assert {n: t for n, t in readme.items() if exported[n] != t} == {}, "README types differ from /metrics"
