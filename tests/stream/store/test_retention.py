"""Retention of the store with a controllable clock: just inside / just outside the window, holds,
receipts, and a run interrupted part-way then re-run."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import CollectorRegistry

from stream.store.alerts import AlertStore
from stream.store.retention import (
    Interrupted,
    Retention,
    RetentionMetrics,
    list_holds,
    place_hold,
    receipts,
    release_hold,
)
from tests.stream.store.test_store import make_alert

DAY = 86_400
WINDOW = 730 * DAY
NOW = 1_800_000_000.0
KEY = b"retention-test-audit-key-" + b"k" * 32


@pytest.fixture
def store(database_url):
    s = AlertStore(database_url)
    yield s
    s.dispose()


def alert_at(n: int, ts: float):
    return dataclasses.replace(make_alert(n), ts=ts, first_seen=ts, last_seen=ts)


def job(store, now=NOW, **kw) -> Retention:
    return Retention(store.engine, WINDOW, audit_key=KEY, clock=lambda: now, pause_s=0, **kw)


def by_kind(receipts) -> dict:
    return {r.kind: r for r in receipts}


def test_deletes_just_outside_the_window_and_keeps_just_inside(store):
    outside = alert_at(1, NOW - WINDOW - 1)
    inside = alert_at(2, NOW - WINDOW + 1)
    store.upsert_alerts([outside, inside])
    registry = CollectorRegistry()
    got = by_kind(job(store, metrics=RetentionMetrics(registry)).run())
    r_alerts, r_holds = got["alerts"], got["released_holds"]
    assert store.ids() == {inside.id}
    assert (r_alerts.kind, r_alerts.deleted, r_alerts.kept_on_hold) == ("alerts", 1, 0)
    assert r_alerts.oldest.timestamp() == r_alerts.newest.timestamp() == NOW - WINDOW - 1
    assert r_alerts.finished_at is not None and r_holds.deleted == 0
    assert registry.get_sample_value("custodes_retention_deleted_total", {"kind": "alerts"}) == 1
    assert registry.get_sample_value("custodes_retention_last_success_timestamp_seconds") == NOW


def test_receipts_never_hold_the_deleted_data(store):
    store.upsert_alerts([alert_at(1, NOW - WINDOW - 10)])
    job(store).run()
    text = repr(receipts(store.engine))
    assert "alice" not in text and "Bulk export" not in text and "<b>x</b>" not in text


def test_a_hold_keeps_an_alert_past_the_window_until_released(store):
    held = alert_at(1, NOW - WINDOW - 100)
    store.upsert_alerts([held, alert_at(2, NOW - WINDOW - 50)])
    hold_id = place_hold(store.engine, "alert", held.id, "IOPC referral 2026/17", "dpo@force", now=NOW)
    r = by_kind(job(store).run())["alerts"]
    assert store.ids() == {held.id}
    assert (r.deleted, r.kept_on_hold) == (1, 1)
    [h] = list_holds(store.engine, active_only=True)
    assert (h["placed_by"], h["reason"]) == ("dpo@force", "IOPC referral 2026/17")

    assert release_hold(store.engine, hold_id, "referral closed", "dpo@force", now=NOW + DAY)
    assert not release_hold(store.engine, hold_id, "again", "dpo@force")  # already released
    job(store, now=NOW + DAY).run()
    assert store.ids() == set()
    # the released hold is itself a record of who did what: kept until it, too, is past the window
    assert len(list_holds(store.engine)) == 1
    job(store, now=NOW + DAY + WINDOW + 1).run()
    assert list_holds(store.engine) == []


def test_an_interrupted_run_then_a_rerun_deletes_everything_once(store):
    old = [alert_at(n, NOW - WINDOW - 1000 + n) for n in range(25)]
    keep = [alert_at(100 + n, NOW - DAY) for n in range(5)]
    store.upsert_alerts(old + keep)

    first = job(store, batch_size=10)

    def stop_after_two(kind, batch):
        if kind == "alerts" and batch == 2:
            raise Interrupted

    first.after_batch = stop_after_two
    with pytest.raises(Interrupted):
        first.run()
    assert store.count_alerts() == 25 - 20 + 5
    [interrupted] = receipts(store.engine)
    assert (interrupted.deleted, interrupted.finished_at) == (20, None)

    job(store, batch_size=10).run()
    assert store.ids() == {a.id for a in keep}
    done = [r for r in receipts(store.engine) if r.kind == "alerts"]
    assert sum(r.deleted for r in done) == 25  # nothing twice, nothing missed
    assert [r.deleted for r in done] == [5, 20]  # newest receipt first
    assert done[0].finished_at is not None


def test_a_hold_needs_a_reason_and_a_name(store):
    with pytest.raises(ValueError):
        place_hold(store.engine, "alert", "x", " ", "dpo")
    with pytest.raises(ValueError):
        place_hold(store.engine, "subject", "x", "why", "dpo")
    with pytest.raises(ValueError, match="no alert"):
        place_hold(store.engine, "alert", "no-such-alert", "why", "dpo")
