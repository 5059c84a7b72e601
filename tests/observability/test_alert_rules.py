"""Alert rules, their promtool unit tests, and the Grafana dashboard: valid, and about real metrics.

promtool comes with Debian's `prometheus` package (`.ci/run` installs it). Without it the
promtool tests are skipped loudly on a developer machine and fail under `CI=true`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from facetoface.observability import metrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "facetoface.json"
DOCS = ROOT / "docs" / "observability.md"
IN_CI = os.environ.get("CI", "").lower() == "true"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = (
            "promtool is not installed, so the alert rules are NOT checked: "
            "`apt-get install prometheus` (Debian) or run `.ci/run`"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(f"PROMTOOL MISSING: {message}")
    return path


def run_promtool(*args: str) -> None:
    result = subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (f"panel_{panel['id']}_{target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def declared_metrics() -> set[str]:
    names = {metrics.LIVE_SESSIONS, metrics.PAST_MAX_DURATION, *metrics.WEBHOOK_GAUGES}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            [family] = value.describe()
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def referenced_metrics(text: str) -> set[str]:
    found = set(re.findall(r"facetoface_[a-z_]+", text))
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in found}


# --- promtool ------------------------------------------------------------------------------
def test_alert_rules_are_valid() -> None:
    run_promtool("check", "rules", str(ALERTS))


def test_alert_rules_pass_their_unit_tests() -> None:
    run_promtool("test", "rules", str(ALERT_TESTS))


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = [
        {
            "record": f"dashboard:{name}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$job", ".*"),
        }
        for name, expr in dashboard_exprs()
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_promtool("check", "rules", str(path))


# --- consistency ---------------------------------------------------------------------------
def test_every_alert_is_tested_documented_and_labelled() -> None:
    tested = {
        check["alertname"]
        for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for check in case["alert_rule_test"]
    }
    docs = DOCS.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in docs.splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        name = rule["alert"]
        assert name in tested, f"{name} has no promtool unit test"
        assert rule.get("for"), f"{name} has no `for:`"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert annotations["summary"], name
        assert annotations["description"], name
        runbook = annotations["runbook"]
        assert runbook == f"docs/observability.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/observability.md has no section for {name}"


def test_alerts_dashboard_and_docs_name_only_declared_metrics() -> None:
    declared = declared_metrics()
    for path in (ALERTS, DASHBOARD, DOCS):
        unknown = referenced_metrics(path.read_text()) - declared
        assert not unknown, f"{path.name} names metrics that do not exist: {sorted(unknown)}"


def test_every_metric_is_documented_and_on_the_dashboard() -> None:
    declared = declared_metrics()
    assert metrics.__doc__ is not None
    for where, text in (
        ("the metrics module's table", metrics.__doc__),
        ("docs/observability.md", DOCS.read_text()),
        ("the dashboard", DASHBOARD.read_text()),
    ):
        missing = declared - referenced_metrics(text)
        assert not missing, f"{where} lacks {sorted(missing)}"


def test_dashboard_is_a_grafana_model() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "facetoface"
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
            assert all(t["expr"] for t in panel["targets"]), panel["title"]
