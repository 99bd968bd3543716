"""The README's install steps name lines that exist: the two Ingress flags in
the Deployment's args (which ``hack/build-installer.sh`` replaces) and the
ServiceMonitor label kube-prometheus-stack selects by; and the samples it
lists are the samples there are."""

from __future__ import annotations

from pathlib import Path

import yaml

from disvc.controller import options

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def test_the_ingress_flags_the_installer_sets_are_one_line_each_in_the_deployment() -> None:
    text = README.read_text()
    assert "hack/build-installer.sh <registry>/disvc-controller:<tag> --ingress-domain" in text
    # the installer replaces args 0 and 1, after checking they are these
    installer = (REPO / "hack" / "build-installer.sh").read_text()
    assert 'test, path: $args/0, value: \\"--ingress-domain=example.com\\"' in installer
    assert 'test, path: $args/1, value: \\"--ingress-class=\\"' in installer
    manager = yaml.safe_load((REPO / "config" / "manager" / "manager.yaml").read_text())
    args = manager["spec"]["template"]["spec"]["containers"][0]["args"]

    assert args[:2] == ["--ingress-domain=example.com", "--ingress-class="]
    parsed = options.parse(args)
    # as shipped they change nothing: the defaults the README's flag table states
    assert (parsed.ingress_domain, parsed.ingress_class) == ("example.com", None)


def test_the_service_monitor_carries_the_release_label_the_readme_names() -> None:
    assert "The ServiceMonitor carries the label `release: prometheus`" in README.read_text()
    monitor = yaml.safe_load((REPO / "config" / "prometheus" / "monitor.yaml").read_text())

    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_the_readme_counts_and_names_every_sample() -> None:
    samples = yaml.safe_load((REPO / "config" / "samples" / "kustomization.yaml").read_text())["resources"]
    line = next(line for line in README.read_text().splitlines() if line.startswith("kubectl apply -k config/samples "))
    words = {"five": 5, "six": 6, "seven": 7}
    count = next(n for word, n in words.items() if f"# {word} sample DISVCs" in line)
    assert count == len(samples)
    for kind in ("REST", "gRPC", "3 replicas", "rolling", "canary", "Knative", "analysis"):
        assert kind in line
    assert {"grpc", "replicas3", "rolling", "canary", "knative", "analysis"} <= {s.removesuffix(".yaml").rsplit("_", 1)[-1] for s in samples}
