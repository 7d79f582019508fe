"""Warn reviewers ahead of the retention job: an alert or case that will pass the window within
``retention_warning_days`` (and is not under legal hold) shows when it will be deleted.

The dates come from the rules the job applies (stream/store/retention_targets.py): an alert by its newest
evidence, a case by its newest activity (an update, an alert added, a comment), open or closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from stream.store.retention_targets import case_activity, due_at, held_ids
from stream.store.tables import alerts

from .tables import cases


@dataclass(frozen=True)
class DeletionNotice:
    kind: str  # "alert" or "case"
    due: datetime
    days_left: int
    window_days: int


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def _notice(kind: str, newest: Any, retention_s: int, warning_days: int, now: datetime) -> DeletionNotice | None:
    if newest is None:
        return None
    due = due_at(_aware(newest), retention_s)
    if due - now > timedelta(days=warning_days):
        return None
    days_left = max(0, (due - now) // timedelta(days=1))
    return DeletionNotice(kind, due, days_left, retention_s // 86_400)


def for_alert(conn: Connection, alert_id: str, retention_s: int, warning_days: int,
              now: datetime) -> DeletionNotice | None:
    if alert_id in held_ids(conn, "alert"):
        return None
    newest = conn.execute(select(alerts.c.ts).where(alerts.c.id == alert_id)).scalar()
    return _notice("alert", newest, retention_s, warning_days, now)


def for_case(conn: Connection, case_id: int, retention_s: int, warning_days: int,
             now: datetime) -> DeletionNotice | None:
    if str(case_id) in held_ids(conn, "case"):
        return None
    newest = conn.execute(select(case_activity).where(cases.c.id == case_id)).scalar()
    return _notice("case", newest, retention_s, warning_days, now)


def cases_due(conn: Connection, retention_s: int, warning_days: int, now: datetime) -> dict[int, DeletionNotice]:
    """Every case, not on hold, that the retention job will delete within the warning period (by id)."""
    horizon = now - timedelta(seconds=retention_s) + timedelta(days=warning_days)
    held = {int(c) for c in held_ids(conn, "case") if str(c).isdigit()}
    out = {}
    for case_id, newest in conn.execute(select(cases.c.id, case_activity).where(case_activity <= horizon)):
        notice = _notice("case", newest, retention_s, warning_days, now)
        if case_id not in held and notice is not None:
            out[case_id] = notice
    return out
