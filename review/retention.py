"""The review app's stored data under the retention window (registered with stream.retention).

- ``sessions``: by last use (they expire within hours anyway);
- ``reveals``: by request time (each reveal is also in the audit trail);
- ``comments``: by creation, except on an alert or case under legal hold;
- ``cases``: by last update, once closed, not on hold and left with no alerts (retention deleted them);
- ``case_links``: links to alerts that retention has deleted;
- ``audit_trail``: the oldest records, always as a prefix of the chain. Each batch first writes a
  checkpoint (the last deleted record's seq and hash) and a ``retention`` record attesting it, in the
  same transaction, so ``custodes audit verify`` still proves the rest of the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, text, update

from stream.retention import Target, held_ids, register
from stream.tables import alerts

from .audit import AuditTrail
from .tables import audit_checkpoints, audit_log, case_alerts, cases, comments, reveals, sessions


def _held_comments(conn: Any) -> Any:
    held_alerts = held_ids(conn, "alert")
    held_cases = [int(c) for c in held_ids(conn, "case") if str(c).isdigit()]
    conds = []
    # NULL-safe: a comment has an alert or a case, and "NULL IN (…)" would make NOT(…) drop the row
    if held_alerts:
        conds.append(and_(comments.c.alert_id.is_not(None), comments.c.alert_id.in_(held_alerts)))
    if held_cases:
        conds.append(and_(comments.c.case_id.is_not(None), comments.c.case_id.in_(held_cases)))
    return or_(*conds) if conds else None


def _held_cases(conn: Any) -> Any:
    held = [int(c) for c in held_ids(conn, "case") if str(c).isdigit()]
    return cases.c.id.in_(held) if held else None


def _deletable_cases(cutoff: datetime) -> Any:
    has_alerts = select(case_alerts.c.case_id).where(case_alerts.c.case_id == cases.c.id).exists()
    return and_(cases.c.status == "closed", cases.c.legal_hold.is_(False), ~has_alerts)


def _orphan_links(cutoff: datetime) -> Any:
    return ~select(alerts.c.id).where(alerts.c.id == case_alerts.c.alert_id).exists()


def _audit_prefix(cutoff: datetime) -> Any:
    """Only a prefix of the chain: records before the first one that is still inside the window."""
    return audit_log.c.seq < select(func.coalesce(func.min(audit_log.c.seq), 2**62)).where(
        audit_log.c.ts >= cutoff).scalar_subquery()


def _checkpoint(conn: Any, rows: Sequence[Any]) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
    last_seq = max(r[0] for r in rows)
    last_hash = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == last_seq)).scalar_one()
    now = datetime.now(UTC)
    existing = conn.execute(select(audit_checkpoints.c.seq)).scalars().all()
    if existing:
        conn.execute(update(audit_checkpoints).values(seq=last_seq, hash=last_hash, created_at=now))
    else:
        conn.execute(insert(audit_checkpoints).values(seq=last_seq, hash=last_hash, created_at=now))
    AuditTrail(conn.engine, lambda: now.timestamp()).append(
        conn, actor="custodes-retention", role="system", action="retention", target_type="audit_log",
        target_id=str(last_seq), detail={"checkpoint_seq": last_seq, "checkpoint_hash": last_hash,
                                         "deleted_up_to": last_seq})


register(Target("review_sessions", sessions, sessions.c.token_hash, sessions.c.last_seen))
register(Target("review_reveals", reveals, reveals.c.id, reveals.c.requested_at))
register(Target("review_comments", comments, comments.c.id, comments.c.created_at, keep=_held_comments))
register(Target("review_case_links", case_alerts, case_alerts.c.alert_id, case_alerts.c.added_at,
                extra=_orphan_links, by_age=False))
register(Target("review_cases", cases, cases.c.id, cases.c.updated_at, keep=_held_cases,
                extra=_deletable_cases))
register(Target("audit_trail", audit_log, audit_log.c.seq, audit_log.c.ts, extra=_audit_prefix,
                before_delete=_checkpoint, order=audit_log.c.seq))
