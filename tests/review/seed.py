"""Seeding and logging in, shared by the review tests."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Any

from detectors.alert import Alert, alert_id
from stream.store.alerts import AlertStore

T0 = 1_770_000_000.0  # 2026-02-02, the tests' "now" is a few hours after
NOW = T0 + 6 * 3600
_n = itertools.count(1)


def make_alert(subject: str = "u-alice", *, n: int | None = None, severity: str = "high", score: float = 70.0,
               ts: float = T0, content: str = "see attached", detector: str = "bulk_export",
               title: str | None = None) -> Alert:
    n = next(_n) if n is None else n
    evidence = (
        {"id": f"e{n}-1", "ts": ts - 120, "kind": "record_access", "action": "search", "dataset": "pnc",
         "sensitivity": "high", "record_count": 150, "record_ids": ["r1", "r2"]},
        {"id": f"e{n}-2", "ts": ts, "kind": "export", "action": "csv_export", "dataset": "pnc",
         "sensitivity": "high", "record_count": 120, "file_name": "people.csv", "content": content},
    )
    return Alert(
        id=alert_id(detector, subject, f"high:{n}"), detector=detector, detector_version=1, severity=severity,
        score=score, subject=subject, title=title or f"Bulk export: 270 high-sensitivity records in 60 min ({n})",
        explanation="Within 60 minutes of event time this user exported or looked up 270 records (threshold "
                    "200) of high-sensitivity data from pnc.",
        ts=ts, first_seen=ts - 120, last_seen=ts, evidence_event_ids=(f"e{n}-1", f"e{n}-2"), evidence=evidence,
        facts={"sensitivity": "high", "records": 270, "max_records": 200, "window_s": 3600},
    )


def seed(url: str, alerts: list[Alert], stored_at: float = NOW) -> list[Alert]:
    store = AlertStore(url)
    try:
        store.upsert_alerts(alerts, now=datetime.fromtimestamp(stored_at, UTC))
    finally:
        store.dispose()
    return alerts


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


def login(client: Any, name: str, password: str = PASSWORD) -> str:
    """Log ``client`` in through the login form; returns the session's CSRF token."""
    client.cookies.clear()
    page = client.get("/login")
    token = CSRF.search(page.text).group(1)
    resp = client.post("/login", data={"username": name, "password": password, "csrf_token": token,
                                       "next": "/queue"}, follow_redirects=False)
    assert resp.status_code == 303, (resp.status_code, resp.text[:500])
    return client.get("/api/me").json()["csrf_token"]
