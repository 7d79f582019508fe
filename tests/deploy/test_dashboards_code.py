"""Dashboards as code: the JSON in deploy/grafana/dashboards/ is what deploy/grafana/dashboards.py
generates, so an edit to the JSON alone (or to the description without regenerating) fails here."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .common import DEPLOY

BUILD = DEPLOY / "grafana" / "build.py"


@pytest.fixture(scope="module")
def model():
    sys.path.insert(0, str(BUILD.parent))
    try:
        import model as grafana_model

        yield grafana_model
    finally:
        sys.path.remove(str(BUILD.parent))


def test_the_checked_in_dashboards_are_the_generated_ones():
    result = subprocess.run([sys.executable, str(BUILD), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "4 dashboards up to date" in result.stdout


def test_a_hand_edit_of_the_json_is_caught(tmp_path):
    import shutil

    copy = tmp_path / "grafana"
    shutil.copytree(BUILD.parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "dashboards" / "review.json"
    target.write_text(target.read_text().replace('"Review app up"', '"Review app is up"'))
    result = subprocess.run([sys.executable, str(copy / "build.py"), "--check"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "review.json differ" in result.stderr and "python deploy/grafana/build.py" in result.stderr


def test_panels_flow_left_to_right_and_wrap_at_24_columns(model):
    stat = model.Stat("s", "d", model.rate_by("custodes_x_total"), w=8)
    wide = model.TimeSeries("t", "d", model.quantiles("custodes_y_seconds"), w=12)
    board = model.Dashboard("custodes-x", "Custodes / X", "d", rows=(
        model.Row("first", (stat, stat, stat, stat)), model.Row("second", (wide, wide, wide)),
    ))
    panels = model.render(board)["panels"]
    assert [p["id"] for p in panels] == list(range(1, 10))
    grid = [(p["type"], p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels]
    assert grid == [("row", 0, 0), ("stat", 0, 1), ("stat", 8, 1), ("stat", 16, 1), ("stat", 0, 5),
                    ("row", 0, 9), ("timeseries", 0, 10), ("timeseries", 12, 10), ("timeseries", 0, 18)]
    assert [t["expr"] for t in panels[6]["targets"]] == [
        f"histogram_quantile({level}, sum by (le) (rate(custodes_y_seconds_bucket[$__rate_interval])))"
        for level in (0.5, 0.95, 0.99)]
    assert [t["refId"] for t in panels[6]["targets"]] == ["A", "B", "C"]


def test_rate_by_splits_by_a_label(model):
    (query,) = model.rate_by("custodes_dead_letters_total", "reason")
    assert query.expr == "sum by (reason) (rate(custodes_dead_letters_total[$__rate_interval]))"
    assert query.legend == "{{reason}}"
