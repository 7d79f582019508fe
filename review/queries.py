"""Read-side queries of the review app. Every alert and case query goes through :func:`visible_to` /
:func:`case_visible_to`, which hide alerts and cases about the account holder: subjects equal to the
account's linked monitored user id **or** to its account name (the review app's own events, and so
``reviewer_watch`` alerts about an account without a linked id, have the account name as subject)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from detectors.risk import RiskConfig, squash, weighted
from stream.store.tables import ALERT_STATUSES, alerts

from .auth import Account
from .privacy import shown_list_title
from .pseudonym import Pseudonymiser
from .tables import case_alerts, cases, comments, reveals, users

QUEUE_COLUMNS = (
    alerts.c.id, alerts.c.detector, alerts.c.severity, alerts.c.score, alerts.c.subject, alerts.c.title,
    alerts.c.ts, alerts.c.count, alerts.c.status, alerts.c.assignee, alerts.c.disposition,
    alerts.c.facts, alerts.c.evidence,  # to show the title masked (privacy.shown_list_title), then dropped
)
SORTS = {"newest": (alerts.c.ts.desc(), alerts.c.id), "risk": (alerts.c.score.desc(), alerts.c.ts.desc(),
                                                                 alerts.c.id)}


def utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def own_identities(account: Account) -> tuple[str, ...]:
    """The subjects an account's holder appears under: the account name (what the app's own review
    events carry when no monitored user id is linked) and the linked monitored user id, if any."""
    linked = (account.linked_user_id or "").strip()
    return (account.name, linked) if linked and linked != account.name else (account.name,)


def is_own(account: Account, subject: str | None) -> bool:
    return subject is not None and subject in own_identities(account)


def visible_to(account: Account) -> ColumnElement[bool]:
    return alerts.c.subject.not_in(own_identities(account))


def case_visible_to(account: Account) -> ColumnElement[bool]:
    return cases.c.subject.not_in(own_identities(account))


@dataclass(frozen=True)
class QueueFilter:
    status: str | None = None
    detector: str | None = None
    severity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    assignee: str | None = None
    subject: str | None = None
    """A pseudonym (what reviewers see), never a raw user id."""
    sort: str = "newest"
    page: int = 1

    def conditions(self, subjects: list[str] | None) -> list[ColumnElement[bool]]:
        c: list[ColumnElement[bool]] = []
        if self.detector:
            c.append(alerts.c.detector == self.detector)
        if self.severity:
            c.append(alerts.c.severity == self.severity)
        if self.since:
            c.append(alerts.c.ts >= self.since)
        if self.until:
            c.append(alerts.c.ts < self.until)
        if self.assignee == "-":
            c.append(alerts.c.assignee.is_(None))
        elif self.assignee:
            c.append(alerts.c.assignee == self.assignee)
        if subjects is not None:
            c.append(alerts.c.subject.in_(subjects) if subjects else alerts.c.id.is_(None))
        return c


def list_row(r: Any, pseudo: Pseudonymiser) -> dict[str, Any]:
    """A QUEUE_COLUMNS row as lists show it: pseudonym instead of subject, title masked."""
    d = dict(r._mapping)
    d["ts"] = utc(d["ts"])
    d["pseudonym"] = pseudo(d.pop("subject"))
    d["title"] = shown_list_title(d)
    return d


def subjects_for_pseudonym(conn: Connection, pseudo: Pseudonymiser, pseudonym: str) -> list[str]:
    pseudonym = pseudonym.strip()
    return [s for s in conn.execute(select(alerts.c.subject).distinct()).scalars() if pseudo(s) == pseudonym]


def queue(conn: Connection, account: Account, f: QueueFilter, pseudo: Pseudonymiser,
          page_size: int) -> dict[str, Any]:
    subjects = subjects_for_pseudonym(conn, pseudo, f.subject) if f.subject else None
    base = [visible_to(account), *f.conditions(subjects)]
    counts = dict.fromkeys(ALERT_STATUSES, 0)
    for status, n in conn.execute(
        select(alerts.c.status, func.count()).where(*base).group_by(alerts.c.status)
    ):
        counts[status] = n
    where = [*base] + ([alerts.c.status == f.status] if f.status else [])
    total = conn.execute(select(func.count()).select_from(alerts).where(*where)).scalar_one()
    page = max(1, f.page)
    rows = conn.execute(
        select(*QUEUE_COLUMNS).where(*where).order_by(*SORTS.get(f.sort, SORTS["newest"]))
        .limit(page_size).offset((page - 1) * page_size)
    )
    items = [list_row(r, pseudo) for r in rows]
    pages = max(1, -(-total // page_size))
    return {"items": items, "total": total, "page": page, "pages": pages, "counts": counts}


def alert(conn: Connection, account: Account, alert_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id, visible_to(account))).first()
    if row is None:
        return None
    d = dict(row._mapping)
    for k in ("ts", "first_seen", "last_seen", "created_at", "updated_at"):
        d[k] = utc(d[k])
    return d


def related(conn: Connection, account: Account, subject: str, exclude: str, pseudo: Pseudonymiser,
            limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(*QUEUE_COLUMNS).where(alerts.c.subject == subject, alerts.c.id != exclude, visible_to(account))
        .order_by(alerts.c.ts.desc()).limit(limit)
    )
    return [list_row(r, pseudo) for r in rows]


PERSON_RISK = "person_risk"
CONTRIBUTIONS_SHOWN = 5


def subjects(conn: Connection, account: Account, now: datetime, risk: RiskConfig,
             pseudo: Pseudonymiser, limit: int = 200) -> list[dict[str, Any]]:
    """People ranked by risk: the accumulated person risk of their latest open ``person_risk`` alert
    (detectors/person_risk.py: decayed sum of indicator signals and alerts, decayed further to ``now``),
    or, if higher or there is none, their open alerts combined (detectors.risk, [detectors.risk])."""
    per: dict[str, dict[str, Any]] = {}
    rows = conn.execute(
        select(alerts.c.subject, alerts.c.score, alerts.c.ts, alerts.c.severity, alerts.c.count,
               alerts.c.last_seen, alerts.c.detector, alerts.c.facts)
        .where(alerts.c.status != "closed", visible_to(account))
    )
    at = now.timestamp()
    for subject, score, ts, severity, count, last_seen, detector, facts in rows:
        p = per.setdefault(subject, {"alerts": [], "severities": set(), "total": 0.0, "person": None})
        p["alerts"].append((score, utc(ts)))
        p["severities"].add(severity)
        seen = utc(last_seen).timestamp()
        if detector == PERSON_RISK and isinstance(facts, dict) and "risk" in facts:
            if p["person"] is None or seen > p["person"][0]:
                p["person"] = (seen, facts)
            continue
        p["total"] += weighted(score, severity, count, seen, at, risk)
    ranked = []
    for subject, p in per.items():
        person, contributions = 0.0, []
        if p["person"] is not None:
            seen, facts = p["person"]
            half = float(facts.get("half_life_days") or risk.half_life_days) * 86400
            person = round(float(facts["risk"]) * 0.5 ** (max(0.0, at - seen) / half), 1)
            contributions = [
                {"indicator": c.get("indicator"), "reason": c.get("reason"), "points": c.get("points"),
                 "signals": c.get("signals")} for c in (facts.get("contributions") or [])[:CONTRIBUTIONS_SHOWN]]
        ranked.append({
            "pseudonym": pseudo(subject),
            "risk": max(person, squash(p["total"], risk)),
            "person_risk": person,
            "contributions": contributions,
            "open_alerts": len(p["alerts"]),
            "last_ts": max(ts for _, ts in p["alerts"]),
            "top_severity": max(p["severities"], key=_severity_rank),
        })
    ranked.sort(key=lambda r: (-r["risk"], r["pseudonym"]))
    return ranked[:limit]


def _severity_rank(s: str) -> int:
    order = ("low", "medium", "high", "critical")
    return order.index(s) if s in order else -1


def detectors(conn: Connection) -> list[str]:
    return sorted(conn.execute(select(alerts.c.detector).distinct()).scalars())


def assignable(conn: Connection, subject: str | None = None) -> list[str]:
    """Active reviewers and supervisors; given the alert's ``subject``, not the account(s) of the person
    the alert is about (by account name or linked id)."""
    q = select(users.c.name).where(users.c.disabled.is_(False), users.c.role.in_(("reviewer", "supervisor")))
    if subject is not None:
        q = q.where(users.c.name != subject,
                    (users.c.linked_user_id.is_(None)) | (users.c.linked_user_id != subject))
    return list(conn.execute(q.order_by(users.c.name)).scalars())


def comments_for(conn: Connection, *, alert_id: str | None = None, case_id: int | None = None) -> list[dict]:
    q = select(comments).order_by(comments.c.created_at, comments.c.id)
    q = q.where(comments.c.alert_id == alert_id) if alert_id else q.where(comments.c.case_id == case_id)
    out = []
    for r in conn.execute(q):
        d = dict(r._mapping)
        d["created_at"] = utc(d["created_at"])
        out.append(d)
    return out


def cases_for_subject(conn: Connection, subject: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        select(cases.c.id, cases.c.title, cases.c.status, cases.c.legal_hold).where(cases.c.subject == subject)
        .order_by(cases.c.id.desc())
    )]


def case_list(conn: Connection, account: Account, pseudo: Pseudonymiser, status: str | None = None) -> list[dict]:
    n_alerts = select(func.count()).where(case_alerts.c.case_id == cases.c.id).scalar_subquery()
    q = select(cases, n_alerts.label("alerts")).order_by(cases.c.updated_at.desc(), cases.c.id.desc())
    if status:
        q = q.where(cases.c.status == status)
    q = q.where(case_visible_to(account))
    out = []
    for r in conn.execute(q):
        d = dict(r._mapping)
        d["pseudonym"] = pseudo(d.pop("subject"))
        d["updated_at"] = utc(d["updated_at"])
        out.append(d)
    return out


def case(conn: Connection, account: Account, case_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(cases).where(cases.c.id == case_id, case_visible_to(account))).first()
    if row is None:
        return None
    d = dict(row._mapping)
    d["created_at"], d["updated_at"] = utc(d["created_at"]), utc(d["updated_at"])
    return d


def case_alert_rows(conn: Connection, account: Account, case_id: int, pseudo: Pseudonymiser) -> list[dict]:
    rows = conn.execute(
        select(*QUEUE_COLUMNS).join(case_alerts, case_alerts.c.alert_id == alerts.c.id)
        .where(case_alerts.c.case_id == case_id, visible_to(account)).order_by(alerts.c.ts.desc())
    )
    return [list_row(r, pseudo) for r in rows]


def pending_reveals(conn: Connection, account: Account) -> list[dict[str, Any]]:
    q = (select(reveals, alerts.c.subject, alerts.c.title, alerts.c.facts, alerts.c.evidence)
         .join(alerts, alerts.c.id == reveals.c.alert_id)
         .where(reveals.c.status == "pending", visible_to(account)).order_by(reveals.c.requested_at))
    out = []
    for r in conn.execute(q):
        d = dict(r._mapping)
        d["requested_at"] = utc(d["requested_at"])
        d["title"] = shown_list_title(d)
        out.append(d)
    return out


def my_reveals(conn: Connection, account: Account, alert_id: str) -> list[dict[str, Any]]:
    q = (select(reveals).where(reveals.c.account == account.name, reveals.c.alert_id == alert_id)
         .order_by(reveals.c.id.desc()).limit(10))
    out = []
    for r in conn.execute(q):
        d = dict(r._mapping)
        for k in ("requested_at", "decided_at", "expires_at"):
            d[k] = utc(d[k])
        out.append(d)
    return out


def queue_gauges(conn: Connection, now: datetime) -> tuple[dict[str, int], float]:
    """Alerts per status and the age of the oldest open one (0 when none), for /metrics."""
    counts = dict.fromkeys(ALERT_STATUSES, 0)
    for status, n in conn.execute(select(alerts.c.status, func.count()).group_by(alerts.c.status)):
        counts[status] = n
    oldest = conn.execute(select(func.min(alerts.c.created_at)).where(alerts.c.status != "closed")).scalar()
    age = max(0.0, (now - utc(oldest)).total_seconds()) if oldest is not None else 0.0
    return counts, age


def parse_day(value: str | None, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` -> that day's start (or the next day's start for an inclusive end), UTC."""
    if not value:
        return None
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day + timedelta(days=1) if end else day


