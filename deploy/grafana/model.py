"""The few shapes Custodes' Grafana dashboards are made of, and the JSON model they become.

A dashboard is a list of rows; a row holds panels laid out left to right, wrapping at Grafana's 24
columns; panel ids count up in order. Every panel queries Prometheus through the ``datasource``
variable. ``build.py`` writes the JSON files from ``dashboards.py``; a test checks the files match.

Adding a panel for a new metric is one call in ``dashboards.py``, e.g.::

    TimeSeries("Alert dead letters by reason", "Alerts the store refused for good, by reason.",
               rate_by("custodes_sink_alerts_dead_lettered_total", "reason"), unit="ops"),

then ``python deploy/grafana/build.py``. Every query must use a metric the code exports
(tests/deploy/test_dashboards.py checks the names; test_live_prometheus.py that each returns data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = "__auto"


@dataclass(frozen=True)
class Stat:
    """A single number: the last value of its query."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    decimals: int | None = None
    thresholds: tuple[tuple[str, float | None], ...] = (("green", None),)
    """(colour, from value) steps; the first step's value is None (the base colour)."""
    sparkline: bool = True
    value_text: dict[str, tuple[str, str]] | None = None
    """Value mappings: {"0": ("DOWN", "red")}: show words instead of numbers."""
    w: int = 6
    h: int = 4


@dataclass(frozen=True)
class TimeSeries:
    """Lines (or stacked bars) over time."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    bars: bool = False
    stacked: bool = False
    w: int = 12
    h: int = 8


Panel = Stat | TimeSeries


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...] = field(default_factory=tuple)
    file: str = ""
    """File name under deploy/grafana/dashboards/."""


def q(expr: str, legend: str = "__auto") -> Query:
    return Query(expr, legend)


def rate_by(counter: str, label: str | None = None, legend: str | None = None) -> tuple[Query, ...]:
    """Per-second rate of a counter, summed over every worker, split by ``label`` if given."""
    if label is None:
        return (q(f"sum(rate({counter}[$__rate_interval]))", legend or "__auto"),)
    return (q(f"sum by ({label}) (rate({counter}[$__rate_interval]))", legend or f"{{{{{label}}}}}"),)


def quantiles(histogram: str, levels: tuple[float, ...] = (0.5, 0.95, 0.99)) -> tuple[Query, ...]:
    """Quantiles of a histogram (``histogram`` without ``_bucket``) over all instances, one line each."""
    return tuple(
        q(f"histogram_quantile({level}, sum by (le) (rate({histogram}_bucket[$__rate_interval])))",
          f"p{round(level * 100):d}")
        for level in levels
    )


def _targets(queries: tuple[Query, ...]) -> list[dict[str, Any]]:
    return [
        {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": query.expr, "legendFormat": query.legend,
         "range": True, "instant": False, "editorMode": "code"}
        for i, query in enumerate(queries)
    ]


def _stat(p: Stat) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit}
    defaults["color"] = {"mode": "thresholds"}
    defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in p.thresholds]}
    mappings: list[dict[str, Any]] = []
    if p.value_text:
        mappings.append({"type": "value", "options": {
            value: {"text": text, "color": colour, "index": i}
            for i, (value, (text, colour)) in enumerate(p.value_text.items())
        }})
    defaults["mappings"] = mappings
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    return {
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value", "graphMode": "area" if p.sparkline else "none", "justifyMode": "auto",
            "orientation": "auto", "textMode": "auto", "wideLayout": True, "showPercentChange": False,
        },
    }


def _timeseries(p: TimeSeries) -> dict[str, Any]:
    return {
        "fieldConfig": {
            "defaults": {
                "unit": p.unit, "color": {"mode": "palette-classic"},
                "custom": {
                    "drawStyle": "bars" if p.bars else "line", "lineWidth": 1, "fillOpacity": 80 if p.bars else 10,
                    "showPoints": "never", "spanNulls": False,
                    "stacking": {"mode": "normal" if p.stacked else "none", "group": "A"},
                },
                "min": 0,
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def render(d: Dashboard) -> dict[str, Any]:
    """The Grafana JSON model (schema 39) of ``d``, laid out and numbered."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in d.rows:
        panels.append({"id": len(panels) + 1, "type": "row", "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "panels": []})
        y += 1
        x, line_h = 0, 0
        for p in row.panels:
            if x + p.w > GRID_WIDTH:
                x, y, line_h = 0, y + line_h, 0
            kind = "stat" if isinstance(p, Stat) else "timeseries"
            body = _stat(p) if isinstance(p, Stat) else _timeseries(p)
            panels.append({"id": len(panels) + 1, "type": kind, "title": p.title, "description": p.description,
                           "datasource": DATASOURCE, "gridPos": {"h": p.h, "w": p.w, "x": x, "y": y},
                           **body, "targets": _targets(p.queries)})
            x += p.w
            line_h = max(line_h, p.h)
        y += line_h
    return {
        "id": None, "uid": d.uid, "title": d.title, "description": d.description, "tags": ["custodes"],
        "timezone": "utc", "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1,
        "refresh": "30s", "liveNow": False, "fiscalYearStartMonth": 0, "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
        }]},
        "links": [{"title": "Custodes", "type": "dashboards", "tags": ["custodes"], "asDropdown": True,
                   "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "templating": {"list": [{
            "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {},
            "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1, "regex": "",
            "skipUrlSync": False,
        }]},
        "panels": panels,
    }
