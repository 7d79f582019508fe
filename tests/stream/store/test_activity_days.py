"""Activity per person per day through the pipeline (fresh, de-duplicated events only), the sink's
upsert (SQLite and PostgreSQL: ``database_url``) and retention."""

from __future__ import annotations

import time
from datetime import date

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from detectors.activity_days import DayCounts, unpack_day
from detectors.registry import build
from stream.contract.settings import load
from stream.store.alerts import AlertStore
from stream.store.retention import Retention
from stream.store.sink import Origin, Sink
from stream.store.tables import activity_days
from stream.worker.pipeline import Pipeline
from tests.stream.events import T0, export, lines

NOW = T0 + 3600
DAY = 86_400


@pytest.fixture
def settings(tmp_path):
    return load(env={"CUSTODES_DATA_DIR": str(tmp_path)})


@pytest.fixture
def pipeline(settings):
    return Pipeline(settings, build(settings.detectors), clock=lambda: NOW)


def _apply(pipeline, value, offset, stored=None):
    split = pipeline.split(value, "events", 0, offset)
    (user, events), = split.groups.items()
    return pipeline.apply(user, events, stored, "e", 0, offset, digests=split.digests.get(user))


def test_the_pipeline_counts_fresh_events_only_and_sends_absolute_days(pipeline):
    first = _apply(pipeline, lines(export("alice", T0, 5, event_id="a"), export("alice", T0 + 60, 5, event_id="b")), 1)
    assert [d.to_dict() for d in first.days] == [
        {"person": "alice", "day": "2026-03-02", "counts": {"export": 2}, "last_seen": T0 + 60}]
    # the same message redelivered: skipped, nothing sent; a producer re-sending an event: not counted
    assert _apply(pipeline, lines(export("alice", T0, 5, event_id="a")), 1, first.state).days == []
    again = _apply(pipeline, lines(export("alice", T0, 5, event_id="a"), export("alice", T0 + 120, 5, event_id="c")),
                   2, first.state)
    assert again.duplicates == 1
    assert [dict(d.counts) for d in again.days] == [{"export": 3}]  # absolute: 2 before + 1 new
    # counts only: [last_seen, counts by activity_days.KIND_ORDER] (export is sixth), the day 20514's
    assert orjson.loads(again.state)["a"] == [[T0 + 120, [0, 0, 0, 0, 0, 3]]]
    assert unpack_day(orjson.loads(again.state)["a"][0]) == (20514, T0 + 120, {"export": 3})


@pytest.fixture
def store(database_url):
    s = AlertStore(database_url)
    yield s
    s.dispose()


def rows(store):
    with store.engine.connect() as conn:
        return {(r.person, r.day): (r.counts, r.total) for r in conn.execute(select(activity_days))}


def test_upsert_is_idempotent_and_never_goes_back(store):
    d = date(2026, 3, 2)
    two = DayCounts("alice", "2026-03-02", {"logon": 1, "export": 1}, T0)
    three = DayCounts("alice", "2026-03-02", {"logon": 2, "export": 1}, T0 + 60)
    assert store.upsert_activity_days([two]) == 1
    assert store.upsert_activity_days([three, two]) == 1  # within a batch, the larger total wins
    assert store.upsert_activity_days([three]) == 1  # the same again: same row, same values
    assert store.upsert_activity_days([two]) == 0  # an out-of-date copy (a resend) changes nothing
    store.upsert_activity_days([DayCounts("bob", "2026-03-03", {"share": 4}, T0 + DAY)])
    assert rows(store) == {("alice", d): ({"logon": 2, "export": 1}, 3),
                           ("bob", date(2026, 3, 3)): ({"share": 4}, 4)}


def test_the_sink_stores_day_records_and_dead_letters_what_is_not_one(store, settings):
    registry = CollectorRegistry()
    sink = Sink(settings, registry=registry, store=store)
    good = DayCounts("alice", "2026-03-02", {"logon": 3}, T0)
    topic = settings.topics.activity_days
    sink.write_days([Origin(orjson.dumps(good.to_dict()), topic, 0, 1), Origin(b"{not json", topic, 0, 2),
                     Origin(b'{"person": "x", "day": "2026-13-45", "counts": {}, "last_seen": 1}', topic, 0, 3)])
    assert rows(store) == {("alice", date(2026, 3, 2)): ({"logon": 3}, 3)}
    assert [(x.reason, x.origin.offset) for x in sink.letters] == [("undecodable", 2), ("undecodable", 3)]
    assert dict(sink.letters[0].headers())["custodes.source.topic"] == topic.encode()
    assert registry.get_sample_value("custodes_sink_activity_days_total", {"outcome": "stored"}) == 1
    assert registry.get_sample_value("custodes_sink_activity_days_total", {"outcome": "rejected"}) == 2


def test_retention_deletes_days_whose_newest_event_is_past_the_window(store):
    window = 730 * DAY
    now = T0 + window + 3600
    old = DayCounts("alice", "2026-03-02", {"logon": 1}, T0 + 3599)  # newest event 1 s outside
    kept = DayCounts("alice", "2026-03-03", {"logon": 1}, T0 + 3601)  # 1 s inside
    other = DayCounts("bob", "2026-03-02", {"logon": 1}, T0 + 3601)  # same day, newest event inside
    store.upsert_activity_days([old, kept, other])
    got = {r.kind: r for r in Retention(store.engine, window, audit_key=b"k" * 32, clock=lambda: now,
                                        pause_s=0).run()}
    assert got["activity_days"].deleted == 1
    assert set(rows(store)) == {("alice", date(2026, 3, 3)), ("bob", date(2026, 3, 2))}


def test_the_sink_dead_letters_a_day_the_store_refuses_and_stores_the_rest(store, settings):
    sink = Sink(settings, registry=CollectorRegistry(), store=store)
    topic = settings.topics.activity_days
    good = [DayCounts(f"p{i}", "2026-03-02", {"logon": i + 1}, T0) for i in range(4)]
    bad = DayCounts("p9", "2026-03-02", {"logon": 1}, 1e20)  # no datetime holds it
    records = [*good[:2], bad, *good[2:]]
    sink.write_days([Origin(orjson.dumps(r.to_dict()), topic, 0, n) for n, r in enumerate(records)])
    assert {p for p, _ in rows(store)} == {"p0", "p1", "p2", "p3"}
    assert [(x.reason, x.origin.offset) for x in sink.letters] == [("bad_value", 2)]


@pytest.mark.parametrize("batch_max_events", [1, 7, 500])
def test_replay_counts_the_same_days_however_the_stream_is_cut(settings, batch_max_events):
    from stream.offline.replay import ReplayResult, run_messages

    docs = [export(f"u{i % 3}", T0 - 30 * 3600 + i * 1700, 1, event_id=f"e{i}",
                   kind=("logon", "export", "share")[i % 5 % 3]) for i in range(60)]
    docs += docs[:5]  # re-sent copies: not counted
    messages = [lines(*docs[i:i + 4]) for i in range(0, len(docs), 4)]

    def days(n):
        s = settings.model_copy(update={"batch_max_events": n})
        p = Pipeline(s, build(s.detectors), clock=lambda: NOW)
        return {k: dict(v.counts) for k, v in run_messages(p, (ReplayResult(), iter(messages))).days.items()}

    expected: dict = {}
    for i in range(60):
        key = (f"u{i % 3}", time.strftime("%Y-%m-%d", time.gmtime(T0 - 30 * 3600 + i * 1700)))
        kind = ("logon", "export", "share")[i % 5 % 3]
        expected.setdefault(key, {})
        expected[key][kind] = expected[key].get(kind, 0) + 1
    assert days(batch_max_events) == expected
