"""The metric names the alert rules and the Grafana dashboard use, read out of their PromQL.

The one list of names is derived from the files themselves
(docker/prometheus/alerts.yml, docker/grafana/pushes.json), so it cannot drift
from them: :func:`used_metric_names`.  The deployment test holds the names to
the app's metrics; an integration test holds a live worker's ``/metrics`` to
them with :func:`missing_metrics`.

The PromQL reading is lexical, which is all that naming a metric needs:
strings, label matchers, ranges and grouping clauses are removed, then every
identifier that is not a function, an aggregation or a keyword is a metric.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "docker" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "docker" / "grafana" / "pushes.json"

#: Series Prometheus makes itself: no worker serves them.
PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})

_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "start", "end"}
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
# Not after a word character, "." or "$": skips the "m" of "5m", the "e3" of
# "1e3" and Grafana's $variables.
_IDENTIFIER = re.compile(r"(?<![\w.$:])[A-Za-z_:][\w:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", re.S)


def promql_metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (PromQL, Grafana variables allowed)."""
    text = _STRINGS.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or name.lower() in _KEYWORDS:
            continue  # a function or aggregation call, or a keyword
        names.add(name)
    return names


def rule_expressions(path: Path = RULES) -> list[str]:
    """The ``expr`` of every rule in a Prometheus rule file."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a Grafana dashboard: targets, annotations, variables."""
    exprs = [
        target["expr"]
        for panel in _panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    exprs += [a["expr"] for a in dashboard.get("annotations", {}).get("list", []) if "expr" in a]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else query or ""
        # label_values(selector, label): only the selector is PromQL.
        match = _LABEL_VALUES.match(text)
        if match:
            exprs.append(match.group(1))
    return exprs


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    """The dashboard JSON."""
    return dict(json.loads(path.read_text()))


def used_metric_names() -> set[str]:
    """The one list: every metric name the alert rules and the dashboard use."""
    exprs = rule_expressions() + dashboard_expressions(load_dashboard())
    return set().union(*(promql_metric_names(e) for e in exprs))


def served_series(metrics_text: str) -> set[str]:
    """The series names a ``/metrics`` answer (Prometheus text format) makes queryable.

    A labelled counter that has not counted yet has only its ``# TYPE`` line;
    it still counts as served: the worker has the metric, just no event yet.
    """
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def missing_metrics(metrics_text: str, names: Iterable[str] | None = None) -> set[str]:
    """Which of ``names`` (default: :func:`used_metric_names`) a worker's ``/metrics`` lacks.

    Prometheus's own series (``up``, ``ALERTS``) are never expected from a worker.
    """
    wanted = set(used_metric_names() if names is None else names) - PROMETHEUS_SERIES
    return wanted - served_series(metrics_text)
