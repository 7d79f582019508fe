"""The peer benchmarks' rule (bench/peers/workload.py) counts exactly what Custodes' bulk_export
raises on the one-detector workload: the peers' alert counts are asserted against it."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.peers.workload import (
    Rule,
    advance,
    config_only_bulk_export,
    fold_hits,
    make_events,
    only_bulk_export,
    parse,
    reference_alerts,
)
from detectors import registry
from detectors.registry import CATALOG, index
from stream.contract.settings import REPO_CONFIG, load
from stream.offline.replay import ReplayResult, run_messages
from stream.worker.pipeline import Pipeline

RULE = Rule(window_s=600, bucket_s=60, threshold=10, suppress_s=300)


def test_window_counts_whole_buckets_back_to_the_window_and_the_event_itself():
    state, opened = advance(None, 0, 10, RULE)  # 10 is not over 10
    assert not opened and state["b"] == [[0, 10]]
    state, opened = advance(state, 59, 1, RULE)  # same bucket: 11
    assert opened and state["a"] == 59 and state["b"] == [[0, 11]]
    # the window of an event at 600..659 starts at bucket 60: bucket 0 has left it
    state, opened = advance(state, 600, 5, RULE)
    assert not opened and state["b"] == [[600, 5]]


def test_a_hit_within_suppress_s_of_the_last_alert_folds_into_it():
    state = None
    alerts = []
    for ts in (0, 10, 299, 300, 350, 660):
        state, opened = advance(state, ts, 11, RULE)
        alerts.append(opened)
    # 0 opens; 10 and 299 fold (< 0 + 300); 300 opens; 350 folds; 660 opens (>= 300 + 300)
    assert alerts == [True, False, False, True, False, True]


def test_state_only_holds_buckets_in_the_window():
    state = None
    for minute in range(100):
        state, _ = advance(state, minute * 60, 1, RULE)
    assert [b for b, _ in state["b"]] == [m * 60 for m in range(90, 100)]


@given(st.lists(st.floats(0, 10_000, allow_nan=False), max_size=40))
def test_fold_hits_agrees_with_advance_for_hits(times):
    times = sorted(times)
    state, opened_by_advance = None, 0
    for ts in times:  # every event a hit on its own (records over the threshold)
        state, opened = advance(state, ts, RULE.threshold + 1, RULE)
        opened_by_advance += opened
    assert fold_hits(times, RULE) == opened_by_advance


def test_events_parse_back_and_are_in_time_order():
    events = make_events(500, 20, span_s=3600, now=1_800_000_000)
    parsed = [parse(line) for _, line in events]
    assert [p[0] for p in parsed] == [user for user, _ in events]
    assert [p[1] for p in parsed] == sorted(p[1] for p in parsed)
    assert parsed[-1][1] <= 1_800_000_000 - 60
    assert all(1 <= p[2] <= 400 for p in parsed)


@pytest.mark.parametrize(("n", "users", "seed"), [(6000, 30, 1), (4000, 200, 2)])
def test_reference_counts_what_bulk_export_raises(n, users, seed):
    now = time.time()
    events = make_events(n, users, seed=seed, span_s=3 * 3600, now=now)
    expected = reference_alerts(parse(line) for _, line in events)
    assert expected > 3  # the workload does reach the threshold
    settings = load()
    settings = settings.model_copy(update={"detectors": only_bulk_export(settings.detectors, index(CATALOG))})
    pipeline = Pipeline(settings, registry.build(settings.detectors), lambda: now)
    assert [d.id for d in pipeline.engine.detectors] == ["bulk_export"]
    lines = [line for _, line in events]
    messages = [b"\n".join(lines[i:i + 250]) for i in range(0, len(lines), 250)]
    result = run_messages(pipeline, (ReplayResult(), iter(messages)))
    assert result.processed == n
    assert len(result.alerts) == expected


def test_worker_config_disables_every_detector_but_bulk_export():
    import tomllib

    ids = list(index(CATALOG))
    text = config_only_bulk_export(REPO_CONFIG.read_text(), [*ids, "made_up"])
    detectors = tomllib.loads(text)["detectors"]
    assert detectors["bulk_export"]["enabled"] is True
    assert all(detectors[d]["enabled"] is False for d in ids if d != "bulk_export")
    assert detectors["made_up"] == {"enabled": False}
    assert detectors["bulk_export"]["max_records"]["medium"] == Rule().threshold
