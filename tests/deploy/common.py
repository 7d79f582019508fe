"""Shared helpers for the deployment-file tests: paths, real tools, and the PromQL in dashboards and rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from stream.contract.settings import Settings
from stream.telemetry.metrics import PipelineMetrics, SinkMetrics

from ..harness.services import service_unavailable

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules" / "custodes.rules.yml"
DOCS = REPO / "docs" / "deploy.md"

DASHBOARD_UIDS = {
    "custodes-pipeline": "pipeline.json",
    "custodes-detections": "detections.json",
    "custodes-review": "review.json",
    "custodes-retention": "retention.json",
}

ALERTS = (
    "CustodesWorkerDown", "CustodesSinkDown", "CustodesDeadLetterRateHigh", "CustodesConsumerLagGrowing",
    "CustodesEventTimeLagHigh", "CustodesSinkDatabaseDown", "CustodesRetentionOverdue",
    "CustodesAuditChainBroken", "CustodesAlertsDeadLettered",
)

# Metrics of the review app (and the retention job's, which stream.store.retention also defines). Names agreed
# with their authors; expressions over them must be valid PromQL even before any process exports them.
OTHER_METRICS = {
    "custodes_review_queue_alerts", "custodes_review_oldest_open_alert_age_seconds",
    "custodes_review_actions_total", "custodes_review_logins_total", "custodes_audit_chain_valid",
    "custodes_audit_chain_last_verified_timestamp_seconds",
    "custodes_retention_deleted_total", "custodes_retention_last_success_timestamp_seconds",
    "custodes_retention_run_seconds_bucket", "custodes_retention_run_seconds_sum",
    "custodes_retention_run_seconds_count",
}

# Grafana's built-in variables, replaced by concrete values before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "10m"}

# Settings read from the environment, plus CUSTODES_CONFIG (the config file, read by load() and the CLI)
# and the review app's own CUSTODES_REVIEW_* knobs (review.config.ReviewConfig).
SETTINGS_ENV = {f"CUSTODES_{name.upper()}" for name in Settings.model_fields
                if name not in {"topics", "limits", "detectors"}} | {"CUSTODES_CONFIG"}
try:
    from review.config import ENV_PREFIX as _REVIEW_PREFIX
    from review.config import ReviewConfig
except ImportError:  # pragma: no cover - the review app is optional
    pass
else:
    SETTINGS_ENV |= {_REVIEW_PREFIX + name.upper() for name in ReviewConfig.model_fields}

ROLE_PORT = {"worker": "worker_port", "sink": "sink_port", "review": "review_port"}


def tool(name: str) -> str:
    """The path of a real tool (promtool, prometheus); skip locally, FAIL under CI=true, if missing."""
    path = shutil.which(name)
    if path is None:
        service_unavailable(f"`{name}` is not installed (Debian: apt-get install prometheus)")
    return path


def run(*args: str, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard(uid: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS / DASHBOARD_UIDS[uid]).read_text())


def panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    out: list[dict[str, Any]] = []
    for panel in doc.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_queries(uid: str) -> list[tuple[str, str]]:
    """(``panel title / refId``, expr) for every Prometheus target of a dashboard."""
    return [(f"{uid}: {p['title']} / {t['refId']}", t["expr"])
            for p in panels(dashboard(uid)) for t in p.get("targets", []) if t.get("expr")]


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def rule_queries() -> list[tuple[str, str]]:
    return [(f"rule {r.get('alert') or r.get('record')}", r["expr"]) for r in rules()]


def concrete(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced, as Grafana would send it."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def known_metrics() -> set[str]:
    """Every series name the worker and the sink export (from stream.telemetry.metrics), plus OTHER_METRICS and up."""
    registry = CollectorRegistry()
    PipelineMetrics(registry)
    SinkMetrics(registry)
    try:
        from stream.store.retention import RetentionMetrics
    except ImportError:  # pragma: no cover - older tree
        pass
    else:
        RetentionMetrics(registry)
    names = {"up"}
    for family in registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total"}
        elif family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        else:
            names.add(family.name)
    return names | OTHER_METRICS


_METRIC = re.compile(r"\b(custodes_[a-z0-9_]+|up)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    # label names inside {...} and by (...) clauses are not metric names: strip matchers and groupings
    stripped = re.sub(r"\{[^}]*\}", "", expr)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)
    return set(_METRIC.findall(stripped))


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown document."""
    anchors: set[str] = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).lower())
            anchors.add(text.replace(" ", "-"))
    return anchors
