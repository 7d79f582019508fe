"""What the retention job deletes: every table of the store, listed here explicitly (the review app's
tables included; they are the store's, see stream/store/review_tables.py).

The rule is one for every record: it goes once its newest personal content is older than the window,
unless it is under legal hold, and what hangs off a record goes with it.

========================  ====================================================================
kind                      goes when
========================  ====================================================================
alerts                    its newest evidence (``ts``) is past the window; not on hold (itself or
                          a case it is in)
review_cases              its newest activity (an update, an alert added, a comment) is past the window,
                          **open or closed**; not on legal hold
review_comments           written before the window, or its alert / case is gone (closing notes
                          included); not on an alert or case under hold
review_case_links         its alert or its case is gone
review_reveals            requested/decided before the window, or its alert is gone
review_sessions           last used before the window
review_accounts           disabled, and last changed before the window (sessions go with them)
released_holds            released before the window (an active hold is kept)
audit_trail               records up to the last one dated before the window, as a prefix of the
                          chain; each batch moves the checkpoint and a keyed ``retention`` record
                          in the chain attests it
retention_receipts        the run started before the window (receipts hold counts and times only)
========================  ====================================================================

Not deleted: active accounts (current configuration), active holds, the single ``audit_checkpoints``
row (a seq and a hash) and ``alembic_version``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, String, and_, case, cast, func, or_, select, text

from stream.store import audit_chain
from stream.store.review_tables import audit_log, case_alerts, cases, comments, reveals, sessions, users
from stream.store.tables import alerts, holds, retention_receipts


@dataclass(frozen=True)
class Target:
    """One kind of stored data, how its age is measured and when a row of it is deleted."""

    kind: str
    table: Any
    key: Any
    time: Any
    """Column or SQL expression: the row's age (its newest personal content); receipts report its range."""
    where: Callable[[datetime], Any] | None = None
    """Given the cutoff, which rows go (default: ``time`` before the cutoff)."""
    keep: Callable[[Any], Any] | None = None
    """Given a connection, a condition for rows that must be kept (legal hold). Re-read per batch."""
    before_delete: Callable[[Any, Sequence[Any], datetime], None] | None = None
    """Called in the deleting transaction with the batch's (key, time) rows and the job's ``now``."""
    order: Column | None = None
    """Delete in this column's order (default: ``time``)."""


def held_ids(conn: Any, kind: str) -> set[str]:
    """Ids of the alerts (``kind="alert"``, including alerts in held cases) or cases under an active hold
    (a row in ``holds``, or the case's ``legal_hold`` flag)."""
    active = holds.c.released_at.is_(None)
    ids = set(conn.execute(select(holds.c.target_id).where(and_(active, holds.c.target_kind == kind))).scalars())
    case_ids = select(holds.c.target_id).where(and_(active, holds.c.target_kind == "case"))
    if kind == "case":
        ids |= {str(v) for v in conn.execute(select(cases.c.id).where(cases.c.legal_hold.is_(True))).scalars()}
    if kind == "alert":
        ids |= {
            str(v)
            for v in conn.execute(
                select(case_alerts.c.alert_id).where(
                    or_(
                        cast(case_alerts.c.case_id, String).in_(case_ids),
                        case_alerts.c.case_id.in_(select(cases.c.id).where(cases.c.legal_hold.is_(True))),
                    )
                )
            ).scalars()
        }
    return ids


def _held_case_ids(conn: Any) -> list[int]:
    return [int(c) for c in held_ids(conn, "case") if str(c).isdigit()]


def _later(a: Any, b: Any) -> Any:
    """The later of two times, ``a`` when ``b`` is NULL (GREATEST is not portable to SQLite)."""
    return case((b.is_(None), a), (b > a, b), else_=a)


def _held_alerts(conn: Any) -> Any:
    ids = held_ids(conn, "alert")
    return alerts.c.id.in_(ids) if ids else None


def _alert_exists(column: Any) -> Any:
    return select(alerts.c.id).where(alerts.c.id == column).exists()


def _case_exists(column: Any) -> Any:
    return select(cases.c.id).where(cases.c.id == column).exists()


# -- cases: by their newest activity, open or closed ----------------------------------------------

_case_comment = select(func.max(comments.c.created_at)).where(comments.c.case_id == cases.c.id).scalar_subquery()
case_activity = _later(cases.c.updated_at, _case_comment)
"""When a case last changed: an update (adding an alert is one) or a comment on it."""


def _held_cases(conn: Any) -> Any:
    held = _held_case_ids(conn)
    return or_(cases.c.legal_hold.is_(True), cases.c.id.in_(held)) if held else cases.c.legal_hold.is_(True)


def _delete_case_parts(conn: Any, rows: Sequence[Any], now: datetime) -> None:
    """A case's links and comments go with it (no reliance on ON DELETE CASCADE: SQLite may not enforce it)."""
    ids = [r[0] for r in rows]
    conn.execute(case_alerts.delete().where(case_alerts.c.case_id.in_(ids)))
    conn.execute(comments.delete().where(comments.c.case_id.in_(ids)))


# -- comments: by age, or with their alert or case --------------------------------------------------


def _held_comments(conn: Any) -> Any:
    held_alerts = held_ids(conn, "alert")
    held_cases = _held_case_ids(conn)
    conds = []
    # NULL-safe: a comment has an alert or a case, and "NULL IN (…)" would make NOT(…) drop the row
    if held_alerts:
        conds.append(and_(comments.c.alert_id.is_not(None), comments.c.alert_id.in_(held_alerts)))
    conds.append(
        and_(
            comments.c.case_id.is_not(None),
            comments.c.case_id.in_(select(cases.c.id).where(cases.c.legal_hold.is_(True))),
        )
    )
    if held_cases:
        conds.append(and_(comments.c.case_id.is_not(None), comments.c.case_id.in_(held_cases)))
    return or_(*conds)


def _comments_gone(cutoff: datetime) -> Any:
    return or_(
        comments.c.created_at < cutoff,
        and_(comments.c.alert_id.is_not(None), ~_alert_exists(comments.c.alert_id)),
        and_(comments.c.case_id.is_not(None), ~_case_exists(comments.c.case_id)),
    )


def _links_gone(cutoff: datetime) -> Any:
    return or_(~_alert_exists(case_alerts.c.alert_id), ~_case_exists(case_alerts.c.case_id))


# -- reveals, sessions, accounts --------------------------------------------------------------------

reveal_time = func.coalesce(reveals.c.decided_at, reveals.c.requested_at)


def _reveals_gone(cutoff: datetime) -> Any:
    return or_(reveal_time < cutoff, ~_alert_exists(reveals.c.alert_id))


def _accounts_gone(cutoff: datetime) -> Any:
    return and_(users.c.disabled.is_(True), users.c.updated_at < cutoff)


def _delete_account_sessions(conn: Any, rows: Sequence[Any], now: datetime) -> None:
    conn.execute(sessions.delete().where(sessions.c.user_id.in_([r[0] for r in rows])))


# -- the audit trail: a prefix of the chain, checkpointed -------------------------------------------


def _audit_prefix(cutoff: datetime) -> Any:
    """A prefix of the chain: every record up to the last one dated before the cutoff (with clocks that
    never go back, exactly the records before the window)."""
    return (
        audit_log.c.seq
        <= select(func.coalesce(func.max(audit_log.c.seq), 0)).where(audit_log.c.ts < cutoff).scalar_subquery()
    )


def _audit_checkpoint(key: bytes) -> Callable[[Any, Sequence[Any], datetime], None]:
    def write(conn: Any, rows: Sequence[Any], now: datetime) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
        last_seq = max(r[0] for r in rows)
        last_hash = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == last_seq)).scalar_one()
        audit_chain.set_checkpoint(conn, last_seq, last_hash, now)
        # stamped with the job's clock, like the cutoff: never itself before the cutoff (issue 14 item 7)
        audit_chain.append(
            conn,
            key,
            now,
            actor="custodes-retention",
            role="system",
            action="retention",
            target_type="audit_log",
            target_id=str(last_seq),
            detail={"checkpoint_seq": last_seq, "checkpoint_hash": last_hash, "deleted_up_to": last_seq},
        )

    return write


def targets(audit_key: bytes) -> list[Target]:
    """Every kind of stored data, in the order the job deletes it (alerts and cases first, so what
    hangs off them goes in the same run). ``audit_key`` signs the audit trail's checkpoint records."""
    return [
        Target("alerts", alerts, alerts.c.id, alerts.c.ts, keep=_held_alerts),
        Target("review_cases", cases, cases.c.id, case_activity, keep=_held_cases, before_delete=_delete_case_parts),
        Target(
            "review_comments", comments, comments.c.id, comments.c.created_at, where=_comments_gone, keep=_held_comments
        ),
        Target("review_case_links", case_alerts, case_alerts.c.alert_id, case_alerts.c.added_at, where=_links_gone),
        Target("review_reveals", reveals, reveals.c.id, reveal_time, where=_reveals_gone),
        Target("review_sessions", sessions, sessions.c.token_hash, sessions.c.last_seen),
        Target(
            "review_accounts",
            users,
            users.c.id,
            users.c.updated_at,
            where=_accounts_gone,
            before_delete=_delete_account_sessions,
        ),
        Target(
            "released_holds",
            holds,
            holds.c.id,
            holds.c.released_at,
            where=lambda cutoff: and_(holds.c.released_at.is_not(None), holds.c.released_at < cutoff),
        ),
        Target(
            "audit_trail",
            audit_log,
            audit_log.c.seq,
            audit_log.c.ts,
            where=_audit_prefix,
            before_delete=_audit_checkpoint(audit_key),
            order=audit_log.c.seq,
        ),
        Target("retention_receipts", retention_receipts, retention_receipts.c.id, retention_receipts.c.started_at),
    ]


def due_at(activity: datetime, retention_s: int) -> datetime:
    """When a record whose newest personal content is dated ``activity`` passes the window."""
    return activity + timedelta(seconds=retention_s)
