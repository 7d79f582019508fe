"""A person's story for the person page: their activity per day by kind (the ``activity_days`` table
the sink fills, detectors/activity_days.py), against their own and their peer group's baseline, with
their alerts and risk signals and the departure window (staff reference: notice and leave dates).

Everything here is counts, dates, detector ids and severities: no event, no content, and the person
appears only as the subject whose rows are read (the page shows the pseudonym).

Baselines, per day of the chart:

- **own**: the mean of the person's daily totals over the ``BASELINE_DAYS`` days before that day
  (days without a row count as 0; days before their first recorded day are not counted; none until a
  first day is recorded);
- **peer group**: that day's mean total per member of their team in the staff directory (the person
  excluded; members not yet started or already left that day are not counted), from the first day any
  of them has a recorded day on (before it, nothing was being counted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from detectors.reference import Reference, Staff
from stream.store.tables import activity_days, alerts

from .auth import Account
from .queries import utc, visible_to

log = logging.getLogger("custodes.review")

BASELINE_DAYS = 28
RANGES = (30, 60, 90, 180, 365)
"""Days the page offers (``?days=``: any from 1 to :data:`MAX_DAYS`); the default is :data:`DEFAULT_DAYS`."""
MAX_DAYS = 365
DEFAULT_DAYS = 60
PERSON_RISK = "person_risk"


@dataclass(frozen=True, slots=True)
class Marker:
    day: date
    label: str
    """Plain words for the tooltip: a detector id, a severity, an indicator and reason: never content."""
    severity: str | None = None
    href: str | None = None


@dataclass(slots=True)
class Story:
    pseudonym: str
    days: list[date]
    counts: dict[date, dict[str, int]] = field(default_factory=dict)
    own: dict[date, float] = field(default_factory=dict)
    peer: dict[date, float] = field(default_factory=dict)
    team: str | None = None
    peers: int = 0
    """Team members in the staff directory besides the person (0: no peer baseline)."""
    alerts: list[Marker] = field(default_factory=list)
    signals: list[Marker] = field(default_factory=list)
    departing: tuple[date, date] | None = None
    """First and last day of the departure window (detectors/departing_user.py), when HR data gives one."""
    notice: date | None = None
    leave: date | None = None
    in_directory: bool = False

    def total(self, day: date) -> int:
        return sum(self.counts.get(day, {}).values())

    @property
    def kinds(self) -> list[str]:
        """Kinds seen in the range, most frequent first."""
        seen: dict[str, int] = {}
        for counts in self.counts.values():
            for k, n in counts.items():
                seen[k] = seen.get(k, 0) + n
        return sorted(seen, key=lambda k: (-seen[k], k))


def day_range(end: date, days: int) -> list[date]:
    return [end - timedelta(days=days - 1 - i) for i in range(days)]


def own_baseline(totals: Mapping[date, int], days: Sequence[date], first: date | None,
                 window: int = BASELINE_DAYS) -> dict[date, float]:
    """Per day, the mean total over the ``window`` days before it, from the first recorded day on."""
    out: dict[date, float] = {}
    if first is None:
        return out
    for day in days:
        prior = [day - timedelta(days=i) for i in range(1, window + 1)]
        counted = [d for d in prior if d >= first]
        if counted:
            out[day] = sum(totals.get(d, 0) for d in counted) / len(counted)
    return out


def employed(staff: Staff, day: date) -> bool:
    start = _date(staff.start_date)
    if start is not None and day < start:
        return False
    return staff.left_at is None or datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() < staff.left_at


def peer_baseline(peer_totals: Mapping[date, int], peers: Sequence[Staff], days: Iterable[date]) -> dict[date, float]:
    """Per day, the peers' summed total divided by the peers employed that day."""
    out: dict[date, float] = {}
    for day in days:
        n = sum(1 for p in peers if employed(p, day))
        if n:
            out[day] = peer_totals.get(day, 0) / n
    return out


def departure_window(staff: Staff | None, config: Mapping[str, Any]) -> tuple[date, date] | None:
    """The departing_user detector's window ([detectors.departing_user]: ``before_days`` before the
    notice date to ``after_days`` after the leave date; ``notice_days`` stands in for the unknown one)."""
    if staff is None or (staff.notice_at is None and staff.left_at is None):
        return None
    day = 86400.0
    before, after = float(config.get("before_days", 14)) * day, float(config.get("after_days", 30)) * day
    notice_s = float(config.get("notice_days", 30)) * day
    start = staff.notice_at if staff.notice_at is not None else staff.left_at - notice_s  # type: ignore[operator]
    end = staff.left_at if staff.left_at is not None else start + notice_s
    return _day(start - before), _day(end + after - 1)


def story(conn: Connection, account: Account, subject: str, pseudonym: str, reference: Reference | None,
          departing_config: Mapping[str, Any], today: date, days: int = DEFAULT_DAYS) -> Story:
    shown = day_range(today, days)
    first_shown, last_shown = shown[0], shown[-1]
    s = Story(pseudonym, shown)
    since = first_shown - timedelta(days=BASELINE_DAYS)
    totals: dict[date, int] = {}
    for day, counts, total in conn.execute(
        select(activity_days.c.day, activity_days.c.counts, activity_days.c.total)
        .where(activity_days.c.person == subject, activity_days.c.day >= since, activity_days.c.day <= last_shown)
    ):
        totals[day] = total
        if day >= first_shown:
            s.counts[day] = {str(k): int(v) for k, v in (counts or {}).items()}
    first = conn.execute(select(func.min(activity_days.c.day)).where(activity_days.c.person == subject)).scalar()
    s.own = own_baseline(totals, shown, first)
    staff = reference.staff.get(subject) if reference is not None else None
    if staff is not None:
        s.in_directory = True
        s.team = staff.team
        s.notice = _day(staff.notice_at) if staff.notice_at is not None else None
        s.leave = _date(staff.leave_date[:10]) if staff.leave_date else None
        s.departing = departure_window(staff, departing_config)
        if staff.team is not None and reference is not None:
            peers = [p for p in reference.staff.values() if p.team == staff.team and p.user_id != subject]
            s.peers = len(peers)
            if peers:
                peer_totals = dict(conn.execute(
                    select(activity_days.c.day, func.sum(activity_days.c.total))
                    .where(activity_days.c.person.in_([p.user_id for p in peers]),
                           activity_days.c.day >= first_shown, activity_days.c.day <= last_shown)
                    .group_by(activity_days.c.day)).all())
                ids = [p.user_id for p in peers]
                since_peers = conn.execute(select(func.min(activity_days.c.day))
                                           .where(activity_days.c.person.in_(ids))).scalar()
                s.peer = peer_baseline({d: int(n) for d, n in peer_totals.items()}, peers,
                                       [d for d in shown if since_peers is not None and d >= since_peers])
    start_ts = datetime(first_shown.year, first_shown.month, first_shown.day, tzinfo=UTC)
    end_ts = datetime(last_shown.year, last_shown.month, last_shown.day, tzinfo=UTC) + timedelta(days=1)
    seen_signals: set[tuple[str, str, float]] = set()
    for alert_id, detector, severity, status, ts, facts in conn.execute(
        select(alerts.c.id, alerts.c.detector, alerts.c.severity, alerts.c.status, alerts.c.ts, alerts.c.facts)
        .where(alerts.c.subject == subject, visible_to(account), alerts.c.ts >= start_ts - timedelta(days=31),
               alerts.c.ts < end_ts)
        .order_by(alerts.c.ts, alerts.c.id)
    ):
        when = utc(ts)
        assert when is not None
        if when >= start_ts:
            s.alerts.append(Marker(when.date(), f"{severity} alert: {detector} ({status})", severity,
                                   f"/alerts/{alert_id}"))
        if detector == PERSON_RISK and isinstance(facts, dict):
            for c in facts.get("contributions") or ():
                last = c.get("last_seen")
                if not isinstance(last, int | float) or isinstance(last, bool):
                    continue
                key = (str(c.get("indicator")), str(c.get("reason")), float(last))
                if key in seen_signals or not start_ts.timestamp() <= last < end_ts.timestamp():
                    continue
                seen_signals.add(key)
                n = c.get("signals")
                words = f"risk signal: {key[0]}, {key[1].replace('_', ' ')}" + (
                    f" ({n} signal{'s' if n != 1 else ''}, latest this day)" if isinstance(n, int) else "")
                s.signals.append(Marker(_day(last), words, None, f"/alerts/{alert_id}"))
    s.signals.sort(key=lambda m: m.day)
    return s


def viewed(state: Any, account: Account, pseudonym: str, days: int) -> Story:
    """The story behind ``pseudonym`` as ``account`` may see it, the view recorded in the audit trail
    (``view`` of ``person``, under the pseudonym). Raises NotFound for nobody, or the account's holder."""
    from .actions import NotFound

    days = days if 1 <= days <= MAX_DAYS else DEFAULT_DAYS
    pseudonym = pseudonym.strip()[:64]
    with state.review.act(account) as a:
        subject = subject_for(a.conn, account, state.pseudo, pseudonym)
        if subject is None:
            raise NotFound("no such person")
        a.log("view", "person", pseudonym, about=subject, days=days)
        reference = (state.directory.current() if state.directory is not None
                     else reference_for(state.settings.reference_dir))
        return story(a.conn, account, subject, pseudonym, reference,
                     state.settings.detectors.get("departing_user", {}), state.review.now().date(), days)


def as_json(s: Story) -> dict[str, Any]:
    """The story for the API: the same numbers the chart draws, pseudonymised."""
    return {
        "pseudonym": s.pseudonym, "team": s.team, "peers": s.peers, "in_directory": s.in_directory,
        "baseline_days": BASELINE_DAYS,
        "days": [{"day": d.isoformat(), "counts": s.counts.get(d, {}), "total": s.total(d),
                  "own_baseline": s.own.get(d), "peer_baseline": s.peer.get(d)} for d in s.days],
        "alerts": [{"day": m.day.isoformat(), "label": m.label, "severity": m.severity,
                    "alert_id": (m.href or "").rpartition("/")[2] or None} for m in s.alerts],
        "signals": [{"day": m.day.isoformat(), "label": m.label,
                     "alert_id": (m.href or "").rpartition("/")[2] or None} for m in s.signals],
        "departure_window": ({"first": s.departing[0].isoformat(), "last": s.departing[1].isoformat()}
                             if s.departing else None),
        "notice_date": s.notice.isoformat() if s.notice else None,
        "leave_date": s.leave.isoformat() if s.leave else None,
    }


def subject_for(conn: Connection, account: Account, pseudo: Any, pseudonym: str) -> str | None:
    """The person behind a pseudonym, among those with alerts or activity the account may see (never
    the account holder themself)."""
    from .queries import is_own

    pseudonym = pseudonym.strip()
    candidates = set(conn.execute(select(alerts.c.subject).distinct()).scalars())
    candidates |= set(conn.execute(select(activity_days.c.person).distinct()).scalars())
    found = sorted(s for s in candidates if pseudo(s) == pseudonym and not is_own(account, s))
    return found[0] if found else None


_loaded: dict[str, tuple[tuple, Reference | None]] = {}


def reference_for(directory: Any) -> Reference | None:
    """The staff reference from ``directory`` (settings.reference_dir), re-read when its files change;
    None when there is none or it cannot be read (the page then says so: no peers, no HR dates)."""
    from stream.detection.reference import load_dir, signature

    if directory is None:
        return None
    key = str(directory)
    try:
        sig = signature(directory)
        cached = _loaded.get(key)
        if cached is not None and cached[0] == sig:
            return cached[1]
        ref: Reference | None = load_dir(directory) if sig else None
    except (OSError, ValueError) as exc:
        log.warning("the reference data could not be read for the person page (%s)", type(exc).__name__)
        return None
    _loaded[key] = (sig, ref)
    return ref


def _day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None
