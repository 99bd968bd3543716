"""The README's install steps name lines that exist: the two Ingress flags in
the Deployment's args (one line each to edit) and the ServiceMonitor label
kube-prometheus-stack selects by."""

from __future__ import annotations

from pathlib import Path

import yaml

from disvc.controller import options

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def test_the_ingress_flags_the_readme_says_to_set_are_one_line_each_in_the_deployment() -> None:
    text = README.read_text()
    assert "set the\ntwo Ingress flags in `args:`" in text
    manager = yaml.safe_load((REPO / "config" / "manager" / "manager.yaml").read_text())
    args = manager["spec"]["template"]["spec"]["containers"][0]["args"]

    assert [a for a in args if a.startswith("--ingress-domain=")] == ["--ingress-domain=example.com"]
    assert [a for a in args if a.startswith("--ingress-class=")] == ["--ingress-class="]
    parsed = options.parse(args)
    # as shipped they change nothing: the defaults the README's flag table states
    assert (parsed.ingress_domain, parsed.ingress_class) == ("example.com", None)


def test_the_service_monitor_carries_the_release_label_the_readme_names() -> None:
    assert "The ServiceMonitor carries the label `release: prometheus`" in README.read_text()
    monitor = yaml.safe_load((REPO / "config" / "prometheus" / "monitor.yaml").read_text())

    assert monitor["metadata"]["labels"]["release"] == "prometheus"
