"""The alert lines of `custodes run`: one per new alert, a summary past the burst, pseudonyms only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stream.cli.alert_feed import AlertFeed
from stream.store.alerts import AlertStore
from tests.stream.store.test_store import make_alert

T = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


class Rows:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, n: int, severity: str = "high") -> None:
        for _ in range(n):
            i = len(self.rows)
            self.rows.append({"created_at": T + timedelta(seconds=i), "id": f"a{i:04d}", "severity": severity,
                              "detector": "bulk_export", "subject": f"user-{i}", "title": f"alert {i}"})

    def fetch(self, after, limit):
        newer = [r for r in self.rows if after is None or (r["created_at"], r["id"]) > after]
        return newer[:limit]


def test_one_line_per_alert_then_a_summary_past_the_burst():
    rows = Rows()
    feed = AlertFeed(rows.fetch, lambda r: "P-" + r["subject"][-1], burst=3)
    assert feed.poll() == []
    rows.add(2)
    lines = feed.poll()
    assert len(lines) == 2 and all(" ALERT high" in line for line in lines)
    assert "bulk_export" in lines[0] and "alert 0" in lines[0] and "user-0" not in lines[0]
    rows.add(7, "medium")
    rows.add(1, "critical")
    lines = feed.poll()
    assert len(lines) == 4  # 3 alerts, then one summary
    assert lines[-1].strip() == "… and 5 more alerts (medium 4, critical 1): custodes alerts"
    assert feed.poll() == []  # nothing is shown twice
    assert (feed.shown, feed.summarised) == (5, 5)


def test_the_feed_pages_through_a_large_burst():
    rows = Rows()
    rows.add(2500)
    feed = AlertFeed(rows.fetch, lambda r: "P-x", burst=2)
    lines = feed.poll(page=1000)
    assert len(lines) == 3 and "2,498 more alerts" in lines[-1]
    assert feed.after == (rows.rows[-1]["created_at"], rows.rows[-1]["id"])


def test_stored_after_follows_the_store_in_stored_order(tmp_path):
    import dataclasses

    store = AlertStore(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        assert store.stored_after(None) == []
        first = make_alert()
        store.upsert_alerts([first], now=T)
        newest = store.stored_after(None)
        assert [r["id"] for r in newest] == [first.id]
        later = [dataclasses.replace(first, id=f"later-{i}", ts=first.ts - 86400) for i in range(3)]
        store.upsert_alerts(later, now=T + timedelta(seconds=5))
        after = (newest[0]["created_at"], newest[0]["id"])
        assert [r["id"] for r in store.stored_after(after)] == ["later-0", "later-1", "later-2"]
        assert [r["id"] for r in store.stored_after(after, limit=2)] == ["later-0", "later-1"]
        # newest first by stored time: alerts about older events that were stored later come first
        assert [r["id"] for r in store.list_alerts(order="stored")][0].startswith("later-")
        assert store.list_alerts(order="event")[0]["id"] == first.id
    finally:
        store.dispose()
