"""Command-line flags: defaults an operator relies on, and rejection of bad values."""

from __future__ import annotations

import pytest

from disvc.controller import options
from disvc.controller.options import BindAddress, Options


def test_defaults_match_a_kubebuilder_manager() -> None:
    parsed = options.parse(["--log-format", "json"])

    assert parsed == Options(
        kubeconfig=None,
        namespace=None,
        ingress_domain="example.com",
        ingress_class=None,
        workers=4,
        metrics_bind_address=BindAddress("", 8080),
        health_probe_bind_address=BindAddress("", 8081),
        leader_elect=False,
        leader_election_id="disvc-controller-leader",
        resync_period=10 * 3600.0,
        watch_idle_timeout=150.0,
        log_format="json",
        log_level="info",
    )


def test_every_flag_reaches_options() -> None:
    parsed = options.parse([
        "--kubeconfig", "/tmp/kc",
        "--namespace", "team-a",
        "--ingress-domain", "models.example.org",
        "--ingress-class", "nginx",
        "--workers", "8",
        "--metrics-bind-address", "127.0.0.1:0",
        "--health-probe-bind-address", ":9440",
        "--leader-elect",
        "--leader-election-namespace", "disvc-system",
        "--leader-election-id", "other-lease",
        "--resync-period", "0",
        "--watch-idle-timeout", "2.5",
        "--log-format", "console",
        "--log-level", "debug",
    ])

    assert parsed.kubeconfig == "/tmp/kc"
    assert parsed.namespace == "team-a"
    assert parsed.ingress_domain == "models.example.org"
    assert parsed.ingress_class == "nginx"
    assert parsed.workers == 8
    assert parsed.metrics_bind_address == BindAddress("127.0.0.1", 0)
    assert parsed.health_probe_bind_address == BindAddress("", 9440)
    assert parsed.leader_elect
    assert parsed.leader_election_namespace == "disvc-system"
    assert parsed.leader_election_id == "other-lease"
    assert parsed.resync_period == 0
    assert parsed.watch_idle_timeout == 2.5
    assert (parsed.log_format, parsed.log_level) == ("console", "debug")


def test_bind_address_zero_disables_the_server() -> None:
    parsed = options.parse(["--metrics-bind-address", "0", "--health-probe-bind-address", "0"])

    assert parsed.metrics_bind_address is None
    assert parsed.health_probe_bind_address is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [(":8080", BindAddress("", 8080)), ("8080", BindAddress("", 8080)),
     ("0.0.0.0:80", BindAddress("0.0.0.0", 80)), ("[::1]:8443", BindAddress("::1", 8443))],
)
def test_bind_address_forms(text: str, expected: BindAddress) -> None:
    assert options.parse_bind_address(text) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--workers", "0"],
        ["--metrics-bind-address", "localhost:http"],
        ["--health-probe-bind-address", ":70000"],
        ["--resync-period", "-1"],
        ["--watch-idle-timeout", "0"],
        ["--log-format", "xml"],
        ["--leader-election-lease-duration", "5", "--leader-election-renew-deadline", "10"],
    ],
)
def test_bad_values_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        options.parse(argv)

    assert exited.value.code == 2
    assert "usage: disvc-controller" in capsys.readouterr().err


def test_help_explains_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        options.parse(["--help"])

    text = capsys.readouterr().out
    for flag in ("--kubeconfig", "--namespace", "--ingress-domain", "--ingress-class", "--workers",
                 "--metrics-bind-address", "--health-probe-bind-address", "--leader-elect",
                 "--leader-election-namespace", "--leader-election-id", "--resync-period", "--watch-idle-timeout",
                 "--log-format", "--log-level"):
        assert flag in text
