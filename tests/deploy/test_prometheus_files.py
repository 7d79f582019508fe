"""Prometheus configuration and alert rules, checked by the real promtool, plus their contract with the docs."""

from __future__ import annotations

import pytest

from .common import (
    ALERTS,
    DOCS,
    PROMETHEUS,
    RULES,
    github_anchors,
    known_metrics,
    load_yaml,
    metric_names,
    rule_queries,
    rules,
    run,
    tool,
)

TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def test_promtool_check_config():
    out = run(tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert "SUCCESS" in out.stdout
    assert f"{len(ALERTS)} rules found" in out.stdout  # the rule files are found through rule_files


def test_promtool_check_rules():
    out = run(tool("promtool"), "check", "rules", str(RULES))
    assert f"SUCCESS: {len(ALERTS)} rules found" in out.stdout


def test_promtool_test_rules():
    assert TESTS, "no promtool unit tests in deploy/prometheus/tests"
    out = run(tool("promtool"), "test", "rules", *map(str, TESTS), cwd=PROMETHEUS)
    assert "FAILED" not in out.stdout + out.stderr


def test_prometheus_scrapes_worker_sink_and_review():
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"custodes-worker", "custodes-sink", "custodes-review"} <= set(jobs)
    assert jobs["custodes-worker"]["dns_sd_configs"][0]["port"] == 6066
    assert jobs["custodes-sink"]["static_configs"][0]["targets"] == ["sink:6067"]
    assert jobs["custodes-review"]["static_configs"][0]["targets"] == ["review:8080"]
    assert config["rule_files"] == ["rules/*.yml"]


def test_every_required_alert_exists_with_summary_description_and_runbook():
    by_name = {r["alert"]: r for r in rules() if "alert" in r}
    assert set(ALERTS) <= set(by_name), set(ALERTS) - set(by_name)
    anchors = github_anchors(DOCS.read_text())
    for name, rule in by_name.items():
        notes = rule["annotations"]
        assert notes.get("summary") and notes.get("description"), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "docs/deploy.md" and anchor == name.lower(), notes["runbook_url"]
        assert anchor in anchors, f"docs/deploy.md has no runbook section for {name} (#{anchor})"


@pytest.mark.parametrize("name, expr", rule_queries(), ids=[n for n, _ in rule_queries()])
def test_rules_use_only_metrics_that_exist(name, expr):
    unknown = metric_names(expr) - known_metrics()
    assert not unknown, f"{name} uses metrics nobody exports: {unknown}"


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert set(ALERTS) <= firing, f"no firing test for {set(ALERTS) - firing}"
    assert set(ALERTS) <= quiet, f"no not-firing test for {set(ALERTS) - quiet}"
