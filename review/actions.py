"""The write side of the review app: triage, comments, reveals, cases and holds.

Every action runs in one transaction with its audit record (:class:`review.audit.AuditTrail`); after
it commits, the action is counted (custodes_review_actions_total) and emitted as a canonical
``review`` event so detectors can watch the reviewers too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from stream.store.tables import ALERT_STATUSES, alerts

from . import queries
from .audit import AuditTrail
from .auth import Account
from .config import ReviewConfig
from .events import Emitter, review_event
from .metrics import ReviewMetrics
from .privacy import shown_alert
from .pseudonym import Pseudonymiser
from .tables import CASE_STATUSES, DISPOSITIONS, REVEAL_SCOPES, case_alerts, cases, comments, reveals

COMMENT_MAX = 10_000
TRANSITIONS = {
    ("new", "investigating"): "any",
    ("new", "closed"): "any",
    ("investigating", "closed"): "any",
    ("investigating", "new"): "any",
    ("closed", "investigating"): "supervisor",  # reopening needs a supervisor
}


def event_action(rec: dict[str, Any]) -> str:
    """The ``event.action`` of a review event: the audit action, made specific where the reviewer_watch
    detector expects it (``reveal_identity``/``reveal_content``, ``close``)."""
    action, detail = rec["action"], rec["detail"]
    if action in ("reveal", "reveal_request"):
        return f"reveal_{detail.get('scope')}" if action == "reveal" else f"reveal_request_{detail.get('scope')}"
    if action == "status" and detail.get("status") == "closed":
        return "close"
    return action


class ActionError(Exception):
    status = 400


class NotFound(ActionError):
    status = 404


class Forbidden(ActionError):
    status = 403


class Conflict(ActionError):
    status = 409


@dataclass
class Act:
    conn: Connection
    account: Account
    trail: AuditTrail
    records: list[dict[str, Any]] = field(default_factory=list)

    def log(self, action: str, target_type: str, target_id: Any, /, *, about: str | None = None,
            **detail: Any) -> dict[str, Any]:
        """Append an audit record. ``about`` (the monitored person the action concerns) goes into the
        emitted event only, never into the audit trail, which stays pseudonymous."""
        rec = self.trail.append(self.conn, actor=self.account.name, role=self.account.role, action=action,
                                target_type=target_type, target_id=str(target_id), detail=detail)
        self.records.append({**rec, "about": about})
        return rec


class Review:
    def __init__(self, engine: Engine, trail: AuditTrail, emitter: Emitter, metrics: ReviewMetrics,
                 clock: Callable[[], float], config: ReviewConfig, pseudo: Pseudonymiser) -> None:
        self.engine = engine
        self.trail = trail
        self.emitter = emitter
        self.metrics = metrics
        self.clock = clock
        self.config = config
        self.pseudo = pseudo

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    @contextmanager
    def act(self, account: Account) -> Iterator[Act]:
        with self.trail.transaction() as conn:
            a = Act(conn, account, self.trail)
            yield a
        for rec in a.records:  # committed: count and emit
            self.metrics.actions.labels(rec["action"]).inc()
            self.metrics.note_head(rec["seq"], rec["hash"])
            self.emitter.emit(review_event(
                seq=rec["seq"], digest=rec["hash"], ts=rec["ts"].timestamp(), user_id=account.actor_user_id,
                account=account.name, action=event_action(rec), target_type=rec["target_type"],
                target_id=rec["target_id"], about=rec["about"],
            ))

    # -- helpers ----------------------------------------------------------------------------------

    def _alert(self, conn: Connection, account: Account, alert_id: str) -> dict[str, Any]:
        row = queries.alert(conn, account, alert_id)
        if row is None:
            raise NotFound("no such alert")
        return row

    def _case(self, conn: Connection, account: Account, case_id: int) -> dict[str, Any]:
        row = queries.case(conn, account, case_id)
        if row is None:
            raise NotFound("no such case")
        return row

    # -- sessions ---------------------------------------------------------------------------------

    def login(self, account: Account, method: str) -> None:
        with self.act(account) as a:
            a.log("login", "account", account.name, method=method)

    def logout(self, account: Account) -> None:
        with self.act(account) as a:
            a.log("logout", "account", account.name)

    # -- reading (views are audited) --------------------------------------------------------------

    def view_alert(self, account: Account, alert_id: str) -> dict[str, Any]:
        """The alert as this account may see it right now: masked unless revealed."""
        with self.act(account) as a:
            row = self._alert(a.conn, account, alert_id)
            now = self.now()
            from .privacy import active_scopes

            scopes = active_scopes(a.conn, account.name, alert_id, now)
            a.log("view", "alert", alert_id, about=row["subject"], revealed=sorted(scopes))
            subject = row["subject"]
            view = {
                **shown_alert({k: v for k, v in row.items() if k != "subject"}, "content" in scopes),
                "pseudonym": self.pseudo(subject),
                "subject": subject if "identity" in scopes else None,
                "revealed": scopes,
                "related": queries.related(a.conn, account, subject, alert_id, self.pseudo),
                "comments": queries.comments_for(a.conn, alert_id=alert_id),
                "cases": queries.cases_for_subject(a.conn, subject),
                "reveals": queries.my_reveals(a.conn, account, alert_id),
                "assignable": queries.assignable(a.conn, subject),
            }
        return view

    def view_case(self, account: Account, case_id: int) -> dict[str, Any]:
        with self.act(account) as a:
            row = self._case(a.conn, account, case_id)
            a.log("view", "case", case_id, about=row["subject"])
            row["pseudonym"] = self.pseudo(row.pop("subject"))
            row["alerts"] = queries.case_alert_rows(a.conn, account, case_id, self.pseudo)
            row["comments"] = queries.comments_for(a.conn, case_id=case_id)
        return row

    def view_dead_letters(self, account: Account, reason: str | None) -> None:
        """An admin read the dead-letter page (redacted excerpts of bad input): recorded like a view."""
        with self.act(account) as a:
            a.log("view", "dead_letters", reason or "all")

    def view_audit(self, account: Account, filters: dict[str, Any]) -> None:
        with self.act(account) as a:
            a.log("audit_view", "audit", "trail", **{k: str(v) for k, v in filters.items() if v})

    # -- triage -----------------------------------------------------------------------------------

    def assign(self, account: Account, alert_id: str, assignee: str | None) -> None:
        assignee = (assignee or "").strip() or None
        with self.act(account) as a:
            row = self._alert(a.conn, account, alert_id)
            if assignee is not None and assignee not in queries.assignable(a.conn, row["subject"]):
                raise ActionError("can only assign to an active reviewer or supervisor who is not the "
                                  "alert's subject")
            a.conn.execute(update(alerts).where(alerts.c.id == alert_id)
                           .values(assignee=assignee, updated_at=self.now()))
            a.log("assign", "alert", alert_id, about=row["subject"], previous=row["assignee"], assignee=assignee)

    def set_status(self, account: Account, alert_id: str, status: str, disposition: str | None = None,
                   note: str | None = None) -> None:
        if status not in ALERT_STATUSES:
            raise ActionError(f"status must be one of {', '.join(ALERT_STATUSES)}")
        note = (note or "").strip()
        with self.act(account) as a:
            row = self._alert(a.conn, account, alert_id)
            current = row["status"]
            if current == status:
                raise Conflict(f"the alert is {status} already")
            who = TRANSITIONS.get((current, status))
            if who is None:
                raise ActionError(f"an alert cannot go from {current} to {status}")
            if who == "supervisor" and account.role != "supervisor":
                raise Forbidden("only a supervisor can reopen a closed alert")
            values: dict[str, Any] = {"status": status, "updated_at": self.now()}
            if status == "closed":
                if disposition not in DISPOSITIONS:
                    raise ActionError(f"closing needs a disposition: one of {', '.join(DISPOSITIONS)}")
                if not note:
                    raise ActionError("closing needs a note explaining the disposition")
                if len(note) > COMMENT_MAX:
                    raise ActionError(f"notes are limited to {COMMENT_MAX:,} characters")
                values["disposition"] = disposition
            else:
                values["disposition"] = None
            if status == "investigating" and row["assignee"] is None:
                values["assignee"] = account.name
            a.conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))
            a.log("status", "alert", alert_id, about=row["subject"], previous=current, status=status)
            if status == "closed":
                a.conn.execute(comments.insert().values(
                    alert_id=alert_id, author=account.name, kind="disposition",
                    body=f"Closed as {disposition}: {note}", created_at=self.now()))
                a.log("disposition", "alert", alert_id, about=row["subject"], disposition=disposition)

    def comment(self, account: Account, body: str, *, alert_id: str | None = None,
                case_id: int | None = None) -> None:
        body = (body or "").strip()
        if not body:
            raise ActionError("a comment cannot be empty")
        if len(body) > COMMENT_MAX:
            raise ActionError(f"comments are limited to {COMMENT_MAX:,} characters")
        with self.act(account) as a:
            if alert_id is not None:
                about = self._alert(a.conn, account, alert_id)["subject"]
                target = ("alert", alert_id)
            else:
                about = self._case(a.conn, account, int(case_id or 0))["subject"]
                target = ("case", str(case_id))
            a.conn.execute(comments.insert().values(alert_id=alert_id, case_id=case_id, author=account.name,
                                                    kind="comment", body=body, created_at=self.now()))
            a.log("comment", *target, about=about, chars=len(body))

    # -- reveals ----------------------------------------------------------------------------------

    def request_reveal(self, account: Account, alert_id: str, scope: str, reason: str) -> dict[str, Any]:
        reason = (reason or "").strip()
        if scope not in REVEAL_SCOPES:
            raise ActionError(f"scope must be one of {', '.join(REVEAL_SCOPES)}")
        if len(reason) < self.config.reveal_reason_min_chars:
            raise ActionError(f"state a reason of at least {self.config.reveal_reason_min_chars} characters")
        if len(reason) > 2000:
            raise ActionError("reasons are limited to 2,000 characters")
        now = self.now()
        approval = self.config.reveal_needs_approval
        with self.act(account) as a:
            about = self._alert(a.conn, account, alert_id)["subject"]
            values = {"account": account.name, "alert_id": alert_id, "scope": scope, "reason": reason,
                      "requested_at": now}
            if approval:
                values.update(status="pending")
            else:
                values.update(status="approved", decided_by=account.name, decided_at=now,
                              expires_at=now + timedelta(minutes=self.config.reveal_minutes))
            rid = a.conn.execute(reveals.insert().values(**values)).inserted_primary_key[0]
            a.log("reveal_request" if approval else "reveal", "alert", alert_id, about=about, scope=scope,
                  reason=reason,
                  reveal_id=int(rid), minutes=self.config.reveal_minutes)
        return {"id": int(rid), "status": values["status"], "expires_at": values.get("expires_at")}

    def decide_reveal(self, account: Account, reveal_id: int, approve: bool) -> None:
        if account.role != "supervisor":
            raise Forbidden("only a supervisor can decide reveal requests")
        now = self.now()
        with self.act(account) as a:
            row = a.conn.execute(select(reveals).where(reveals.c.id == reveal_id)).first()
            if row is None:
                raise NotFound("no such reveal request")
            about = self._alert(a.conn, account, row.alert_id)["subject"]  # never about themselves
            if row.status != "pending":
                raise Conflict("this request was decided already")
            if row.account == account.name:
                raise Forbidden("you cannot approve your own request")
            values: dict[str, Any] = {"status": "approved" if approve else "denied", "decided_by": account.name,
                                      "decided_at": now}
            if approve:
                values["expires_at"] = now + timedelta(minutes=self.config.reveal_minutes)
            a.conn.execute(update(reveals).where(reveals.c.id == reveal_id).values(**values))
            a.log("reveal_approve" if approve else "reveal_deny", "alert", row.alert_id, about=about,
                  reveal_id=reveal_id,
                  requester=row.account, scope=row.scope)

    # -- cases ------------------------------------------------------------------------------------

    def create_case(self, account: Account, alert_id: str, title: str) -> int:
        title = (title or "").strip()[:500]
        now = self.now()
        with self.act(account) as a:
            row = self._alert(a.conn, account, alert_id)
            title = title or f"Case about {self.pseudo(row['subject'])}"
            case_id = int(a.conn.execute(cases.insert().values(
                subject=row["subject"], title=title, status="open", notes="", legal_hold=False,
                created_by=account.name, created_at=now, updated_at=now)).inserted_primary_key[0])
            a.conn.execute(case_alerts.insert().values(case_id=case_id, alert_id=alert_id,
                                                       added_by=account.name, added_at=now))
            a.log("case_create", "case", case_id, about=row["subject"], alert_id=alert_id)
        return case_id

    def add_to_case(self, account: Account, case_id: int, alert_id: str) -> None:
        now = self.now()
        with self.act(account) as a:
            c = self._case(a.conn, account, case_id)
            row = self._alert(a.conn, account, alert_id)
            if row["subject"] != c["subject"]:
                raise ActionError("a case groups alerts about one person only")
            exists = a.conn.execute(select(case_alerts.c.alert_id).where(
                case_alerts.c.case_id == case_id, case_alerts.c.alert_id == alert_id)).first()
            if exists:
                raise Conflict("the alert is in this case already")
            a.conn.execute(case_alerts.insert().values(case_id=case_id, alert_id=alert_id,
                                                       added_by=account.name, added_at=now))
            a.conn.execute(update(cases).where(cases.c.id == case_id).values(updated_at=now))
            a.log("case_add_alert", "case", case_id, about=c["subject"], alert_id=alert_id)

    def update_case(self, account: Account, case_id: int, *, status: str | None = None,
                    notes: str | None = None) -> None:
        if status is not None and status not in CASE_STATUSES:
            raise ActionError(f"case status must be one of {', '.join(CASE_STATUSES)}")
        if notes is not None and len(notes) > 50_000:
            raise ActionError("notes are limited to 50,000 characters")
        with self.act(account) as a:
            c = self._case(a.conn, account, case_id)
            values: dict[str, Any] = {"updated_at": self.now()}
            detail: dict[str, Any] = {}
            if status is not None and status != c["status"]:
                values["status"] = status
                detail.update(previous=c["status"], status=status)
            if notes is not None and notes != c["notes"]:
                values["notes"] = notes
                detail["notes_chars"] = len(notes)
            if not detail:
                return
            a.conn.execute(update(cases).where(cases.c.id == case_id).values(**values))
            a.log("case_update", "case", case_id, about=c["subject"], **detail)

    def set_hold(self, account: Account, case_id: int, hold: bool, reason: str = "") -> None:
        """Place or lift a legal hold. The hold is a row in the retention job's ``holds`` table (kind
        "case"), which keeps the case's alerts past the retention window; ``cases.legal_hold`` mirrors it."""
        from stream.store.retention import holds

        if account.role != "supervisor":
            raise Forbidden("only a supervisor can place or lift a legal hold")
        reason = (reason or "").strip()
        if not reason:
            raise ActionError("state the reason (e.g. the proceedings or referral reference)")
        if len(reason) > 2000:
            raise ActionError("reasons are limited to 2,000 characters")
        now = self.now()
        with self.act(account) as a:
            c = self._case(a.conn, account, case_id)
            if bool(c["legal_hold"]) == hold:
                raise Conflict("the case is in that state already")
            if hold:
                a.conn.execute(holds.insert().values(target_kind="case", target_id=str(case_id), reason=reason,
                                                     placed_by=account.name, placed_at=now))
            else:
                a.conn.execute(update(holds).where(
                    holds.c.target_kind == "case", holds.c.target_id == str(case_id), holds.c.released_at.is_(None),
                ).values(released_by=account.name, released_at=now, release_reason=reason))
            a.conn.execute(update(cases).where(cases.c.id == case_id).values(legal_hold=hold, updated_at=now))
            a.log("hold", "case", case_id, about=c["subject"], hold=hold, reason=reason)

    def export_case(self, account: Account, case_id: int) -> dict[str, Any]:
        """The case with its alerts, pseudonymised and masked (a reveal does not carry into exports)."""
        with self.act(account) as a:
            c = self._case(a.conn, account, case_id)
            ids = list(a.conn.execute(select(case_alerts.c.alert_id).where(case_alerts.c.case_id == case_id))
                       .scalars())
            out_alerts = []
            for alert_id in ids:
                row = queries.alert(a.conn, account, alert_id)
                if row is None:
                    continue
                row["pseudonym"] = self.pseudo(row.pop("subject"))
                row = shown_alert(row, False)  # title, explanation, facts and evidence masked
                row["comments"] = queries.comments_for(a.conn, alert_id=alert_id)
                out_alerts.append(row)
            a.log("export", "case", case_id, about=c["subject"], alerts=len(out_alerts))
            c["pseudonym"] = self.pseudo(c.pop("subject"))
            c["alerts"] = out_alerts
            c["comments"] = queries.comments_for(a.conn, case_id=case_id)
        return c


