"""Grafana dashboards and provisioning: current JSON model, stable UIDs, a datasource variable, known metrics."""

from __future__ import annotations

import json

import pytest

from .common import (
    DASHBOARD_UIDS,
    DASHBOARDS,
    DEPLOY,
    dashboard,
    dashboard_queries,
    known_metrics,
    load_yaml,
    metric_names,
    panels,
)

ALL_QUERIES = [q for uid in DASHBOARD_UIDS for q in dashboard_queries(uid)]


def test_the_dashboards_directory_holds_exactly_the_four_dashboards():
    files = sorted(p.name for p in DASHBOARDS.glob("*.json"))
    assert files == sorted(DASHBOARD_UIDS.values())
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS.glob("*.json")]
    assert sorted(uids) == sorted(DASHBOARD_UIDS)


@pytest.mark.parametrize("uid", DASHBOARD_UIDS)
def test_dashboard_model(uid):
    doc = dashboard(uid)
    assert doc["uid"] == uid and doc["title"].startswith("Custodes / ")
    assert doc["id"] is None, "provisioned dashboards must not carry a database id"
    assert doc["schemaVersion"] >= 36
    assert "custodes" in doc["tags"]
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(doc)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    data_panels = [p for p in panels(doc) if p["type"] != "row"]
    assert data_panels
    for panel in data_panels:
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel.get("description"), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()


def test_no_panels_overlap():
    for uid in DASHBOARD_UIDS:
        cells: dict[tuple[int, int], str] = {}
        for panel in panels(dashboard(uid)):
            g = panel["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{uid}: {panel['title']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("name, expr", ALL_QUERIES, ids=[n for n, _ in ALL_QUERIES])
def test_dashboard_queries_use_only_metrics_that_exist(name, expr):
    unknown = metric_names(expr) - known_metrics()
    assert not unknown, f"{name} uses metrics nobody exports: {unknown}"


def test_required_panels_are_there():
    exprs = {uid: " ".join(e for _, e in dashboard_queries(uid)) for uid in DASHBOARD_UIDS}
    for metric in ("custodes_events_consumed_total", "custodes_events_dead_lettered_total",
                   "custodes_event_time_lag_seconds_bucket", "custodes_consumer_lag_messages",
                   "custodes_batch_processing_seconds_bucket"):
        assert metric in exprs["custodes-pipeline"], metric
    assert "sum by (detector, severity)" in exprs["custodes-detections"]
    for metric in ("custodes_review_queue_alerts", "custodes_review_oldest_open_alert_age_seconds",
                   "custodes_review_actions_total"):
        assert metric in exprs["custodes-review"], metric
    for metric in ("custodes_retention_deleted_total", "custodes_retention_last_success_timestamp_seconds"):
        assert metric in exprs["custodes-retention"], metric


def test_provisioning_points_at_the_dashboards_and_prometheus():
    providers = load_yaml(DEPLOY / "grafana/provisioning/dashboards/custodes.yaml")["providers"]
    assert providers[0]["type"] == "file"
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards/custodes"
    sources = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")["datasources"]
    assert sources[0]["type"] == "prometheus" and sources[0]["url"] == "http://prometheus:9090"
