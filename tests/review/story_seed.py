"""A person's story to draw: u-bob (team Response North, gave notice, leaving), two team peers and
someone in another team, with activity per day, alerts and a person-risk alert's signals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
from pydantic import SecretStr

from detectors.activity_days import DayCounts
from detectors.alert import Alert, alert_id
from review.app import create_app
from review.config import ReviewConfig
from review.events import MemoryEmitter
from stream.contract.settings import Settings
from stream.store.alerts import AlertStore

from .conftest import AUDIT_KEY
from .seed import NOW, T0, make_alert

TODAY = datetime.fromtimestamp(NOW, UTC).date()  # 2026-02-02
NOTICE = TODAY - timedelta(days=20)
LEAVE = TODAY + timedelta(days=10)
SPIKE = TODAY - timedelta(days=3)
STAFF = [
    {"user_id": "u-bob", "team": "Response North", "role": "constable", "start_date": "2015-01-05",
     "notice_date": NOTICE.isoformat(), "leave_date": LEAVE.isoformat(), "aliases": ["bob.raw@force.example"]},
    {"user_id": "u-carol", "team": "Response North", "role": "constable", "start_date": "2016-01-05"},
    {"user_id": "u-dan", "team": "Response North", "role": "constable", "start_date": "2017-01-05"},
    {"user_id": "u-erin", "team": "CID", "role": "detective", "start_date": "2017-01-05"},
]


def reference_dir(tmp_path: Path) -> Path:
    ref = tmp_path / "reference"
    ref.mkdir(exist_ok=True)
    (ref / "staff.jsonl").write_bytes(b"\n".join(orjson.dumps(s) for s in STAFF) + b"\n")
    return ref


def day_counts() -> list[DayCounts]:
    out = []
    for back in range(0, 90):
        day = TODAY - timedelta(days=back)
        if day.weekday() >= 5 and day != SPIKE:
            continue
        ts = datetime(day.year, day.month, day.day, 17, tzinfo=UTC).timestamp()
        bob = {"logon": 2, "record_access": 20 + back % 5}
        if day == SPIKE:
            bob |= {"export": 40, "removable_media": 6, "web_upload": 3}
        out.append(DayCounts("u-bob", day.isoformat(), bob, ts))
        out.append(DayCounts("u-carol", day.isoformat(), {"logon": 2, "record_access": 18}, ts))
        out.append(DayCounts("u-dan", day.isoformat(), {"logon": 2, "record_access": 26, "export": 2}, ts))
        out.append(DayCounts("u-erin", day.isoformat(), {"logon": 1, "record_access": 400}, ts))
    return out


def story_alerts() -> list[Alert]:
    spike_ts = datetime(SPIKE.year, SPIKE.month, SPIKE.day, 15, tzinfo=UTC).timestamp()
    bulk = make_alert("u-bob", severity="critical", score=92, ts=spike_ts, content="MARKER-CONTENT-7f3a")
    risk = Alert(
        id=alert_id("person_risk", "u-bob", "episode:1"), detector="person_risk", detector_version=1,
        severity="high", score=64.0, subject="u-bob", title="Person risk 64: 2 kinds of signal",
        explanation="This person's risk reached 64 points.", ts=spike_ts + 3600, first_seen=spike_ts - 86400,
        last_seen=spike_ts + 3600, evidence_event_ids=("s1",), evidence=(), count=3,
        facts={"risk": 64.0, "threshold": 50.0, "half_life_days": 7.0, "multiplier": 2.0, "context": ["departing"],
               "contributions": [
                   {"indicator": "departing_user", "reason": "data_out_departing", "points": 30.0, "signals": 2,
                    "event_ids": ["s1"], "last_seen": spike_ts + 600, "note": "copied to removable media"},
                   {"indicator": "off_hours", "reason": "night_logon", "points": 10.0, "signals": 1,
                    "event_ids": ["s2"], "last_seen": spike_ts - 86400, "note": "logon at night"}],
               "key": "episode"},
    )
    other = make_alert("u-erin", ts=T0 - 3600)
    return [bulk, risk, other]


def seed_story(url: str) -> list[Alert]:
    store = AlertStore(url)
    try:
        alerts = story_alerts()
        store.upsert_alerts(alerts, now=datetime.fromtimestamp(NOW, UTC))
        store.upsert_activity_days(day_counts())
    finally:
        store.dispose()
    return alerts


def build_story_app(url: str, tmp_path: Path, clock) -> object:
    settings = Settings(data_dir=tmp_path, database_url=url, audit_key=SecretStr(AUDIT_KEY),
                        reference_dir=reference_dir(tmp_path))
    return create_app(settings, clock=clock, config=ReviewConfig(cookie_secure=False), emitter=MemoryEmitter())


__all__ = ["LEAVE", "NOTICE", "SPIKE", "TODAY", "build_story_app", "date", "seed_story"]
