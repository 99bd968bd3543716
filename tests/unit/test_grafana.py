"""The Grafana dashboard in ``config/grafana/``: every query reads a metric the controller exports.

A dashboard panel over a misspelt or renamed metric shows "No data", which
looks exactly like a healthy idle controller. So each PromQL expression is
parsed down to its metric names and checked against
``disvc.controller.metrics.metric_names()``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "config" / "grafana" / "disvc-dashboard.json"

HISTOGRAM_SERIES_SUFFIXES = ("_bucket", "_sum", "_count")

PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
     "and", "or", "unless", "inf", "nan", "le"}
)  # fmt: skip
LABEL_LIST_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels, keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and string arguments
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery windows
    text = LABEL_LIST_CLAUSE.sub(" ", text)  # by (label, ...) and friends
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    names = set()
    for match in IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def label_values_metric(query: str) -> str | None:
    """The metric of a Grafana ``label_values(metric, label)`` variable query."""
    match = re.match(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?\s*,", query)
    return match.group(1) if match else None


def is_exported(name: str, exported: frozenset[str]) -> bool:
    if name in exported:
        return True
    for suffix in HISTOGRAM_SERIES_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in exported:
            return True
    return False


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    with DASHBOARD.open(encoding="utf-8") as stream:
        loaded: dict[str, Any] = json.load(stream)
    return loaded


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows nest their panels


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


@pytest.fixture(scope="module")
def exported() -> frozenset[str]:
    from disvc.controller import metrics

    return metrics.metric_names()


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'sum by (result) (rate(controller_runtime_reconcile_total{controller=~"$c"}[$__rate_interval]))',
            {"controller_runtime_reconcile_total"},
        ),
        ("histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[5m])))", {"x_seconds_bucket"}),
        ("max by (namespace, name) (a) / ignoring(pod) b_total", {"a", "b_total"}),
        ('count(up{job="disvc", le="+Inf"}) > 0', {"up"}),
    ],
)
def test_metric_name_extraction(expr: str, expected: set[str]) -> None:
    assert metric_names_in(expr) == expected


def test_every_query_reads_only_exported_metrics(dashboard: dict[str, Any], exported: frozenset[str]) -> None:
    unknown = {
        name: expr
        for expr in expressions(dashboard)
        for name in metric_names_in(expr)
        if not is_exported(name, exported)
    }
    assert not unknown, f"queries over metrics the controller does not export: {unknown}"


def test_every_template_variable_query_reads_exported_metrics(
    dashboard: dict[str, Any], exported: frozenset[str]
) -> None:
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        metric = label_values_metric(query)
        assert metric is not None, f"variable {variable['name']}: not a label_values() query"
        assert is_exported(metric, exported), f"variable {variable['name']} reads {metric}"


def test_every_panel_queries_through_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    datasource_variables = [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert datasource_variables, "the Prometheus data source is chosen on import, not hard-coded"
    (variable,) = datasource_variables
    reference = {"${" + variable + "}", "$" + variable}
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for owner in (panel, *panel["targets"]):
            assert owner["datasource"]["uid"] in reference, f"panel {panel['title']!r} hard-codes its data source"


def test_dashboard_covers_reconciles_queue_writes_replicas_and_leader(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names_in(expr) for expr in expressions(dashboard)))
    for name in (
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_reconcile_time_seconds_bucket",
        "workqueue_depth",
        "workqueue_queue_duration_seconds_bucket",
        "disvc_api_writes_total",
        "disvc_managed",
        "disvc_ready_replicas",
        "disvc_leader",
    ):
        assert name in used, f"no panel shows {name}"
    quantiles = [e for e in expressions(dashboard) if "controller_runtime_reconcile_time_seconds_bucket" in e]
    assert all("histogram_quantile" in e for e in quantiles)
    writes = [e for e in expressions(dashboard) if "disvc_api_writes_total" in e]
    assert any(re.search(r"by \([^)]*\bkind\b", e) for e in writes), "API writes are broken down by kind"


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_importing_asks_for_the_prometheus_data_source_and_the_panels_use_it(dashboard: dict[str, Any]) -> None:
    # Grafana's import dialog asks for each entry of __inputs and replaces
    # ${NAME} in the JSON with the choice; the data source variable starts on
    # that choice, and every panel queries through the variable.
    (datasource_input,) = dashboard["__inputs"]
    assert (datasource_input["type"], datasource_input["pluginId"]) == ("datasource", "prometheus")
    placeholder = "${" + datasource_input["name"] + "}"
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    assert variable["current"]["value"] == placeholder
    other_uses = json.dumps({**dashboard, "__inputs": [], "templating": {}}).count(placeholder)
    assert other_uses == 0, "panels go through the variable, so the data source can be switched later"
