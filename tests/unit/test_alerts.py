"""The Prometheus alert rules: valid for promtool, and unit-tested by it, every rule both ways;
and every PromQL expression of the Grafana dashboard parsed by promtool too.

promtool comes from scripts/promtool (Debian's prometheus package, only the
promtool binary, extracted into .tools/ on first use).
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.metric_names import dashboard_expressions, load_dashboard

REPO = Path(__file__).resolve().parents[2]
PROMTOOL = REPO / "scripts" / "promtool"
RULES = REPO / "docker" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "docker" / "prometheus" / "alerts_test.yml"
SEVERITIES = {"critical", "warning"}
#: Grafana's variables, as Grafana substitutes them before Prometheus sees a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$instance": ".*",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_not_firing():
    cases: dict[str, set[bool]] = defaultdict(set)
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == [RULES.name]
    for test in tests["tests"]:
        for case in test.get("alert_rule_test", []):
            cases[case["alertname"]].add(bool(case.get("exp_alerts")))
    names = {rule["alert"] for rule in alert_rules()}
    assert set(cases) == names, f"untested: {names - set(cases)}; unknown: {set(cases) - names}"
    one_way = {name: sorted(seen) for name, seen in cases.items() if seen != {True, False}}
    assert not one_way, f"alerts tested only firing (True) or only quiet (False): {one_way}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_severity_and_tells_what_to_do(rule):
    assert rule["alert"].startswith("Pushes")
    assert rule["labels"]["severity"] in SEVERITIES
    assert {"summary", "description", "runbook"} <= set(rule["annotations"])
    assert all(rule["annotations"][key].strip() for key in ("summary", "description", "runbook"))


def test_every_dashboard_expression_is_valid_promql(tmp_path):
    # promtool parses PromQL only inside rule files: one recording rule per expression.
    exprs = dashboard_expressions(load_dashboard())
    rules = []
    for n, expr in enumerate(exprs):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
        rules.append({"record": f"dashboard:expr_{n}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout
