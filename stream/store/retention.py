"""The retention job: deletes stored data older than the window, keeps what is on legal hold, and
writes a receipt per run and kind that a data-protection officer can list.

Each batch deletes at most ``batch_size`` rows and adds them to the run's receipt in the same
transaction, then pauses briefly, so reviewers are never locked out and an interrupted run leaves a
receipt that says exactly what it did (``finished_at`` empty). Running again deletes the rest: nothing
is deleted twice and nothing is missed. A receipt holds counts and timestamps only, never the data.

What it deletes, and when, is listed explicitly in stream/store/retention_targets.py (every table of the
store, the review app's included). The run has one clock: the cutoff, the receipts and the audit
checkpoint records are all stamped with ``clock()``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Engine, String, and_, cast, delete, func, insert, select, update

from stream.store.retention_targets import Target, held_ids, targets
from stream.store.review_tables import cases
from stream.store.tables import alerts, holds, retention_receipts

__all__ = ["Interrupted", "Receipt", "Retention", "RetentionMetrics", "Target", "held_ids", "list_holds",
           "place_hold", "receipts", "release_hold"]

Clock = Callable[[], float]


class RetentionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deleted = Counter("custodes_retention_deleted_total", "Rows deleted by the retention job.",
                               ["kind"], registry=registry)
        self.last_success = Gauge("custodes_retention_last_success_timestamp_seconds",
                                  "When the retention job last completed (POSIX seconds).", registry=registry)
        self.run_seconds = Histogram("custodes_retention_run_seconds", "Duration of a retention run.",
                                     buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800), registry=registry)


@dataclass(frozen=True)
class Receipt:
    run_id: str
    kind: str
    cutoff: datetime
    deleted: int
    oldest: datetime | None
    newest: datetime | None
    kept_on_hold: int
    started_at: datetime
    finished_at: datetime | None


class Interrupted(Exception):
    """Raised by the test hook to simulate a run stopped part-way."""


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive datetimes
        return value.replace(tzinfo=UTC)
    return value


class Retention:
    def __init__(
        self,
        engine: Engine,
        retention_s: int,
        *,
        audit_key: bytes,
        clock: Clock = time.time,
        metrics: RetentionMetrics | None = None,
        batch_size: int = 500,
        pause_s: float = 0.02,
    ) -> None:
        self.engine = engine
        self.retention_s = retention_s
        self.clock = clock
        self.metrics = metrics
        self.batch_size = batch_size
        self.pause_s = pause_s
        self.targets: Sequence[Target] = targets(audit_key)
        self.after_batch: Callable[[str, int], None] | None = None
        """Test hook: called with (kind, batch number) after each committed batch."""

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> list[Receipt]:
        started = time.perf_counter()
        if self.metrics is not None:
            for target in self.targets:  # every kind reports, 0 included (a dashboard shows 0, not "no data")
                self.metrics.deleted.labels(target.kind)
        run_id = uuid.uuid4().hex
        now = self.clock()
        cutoff = _utc(now - self.retention_s)
        # one clock for the whole run: the cutoff, the receipts and the audit checkpoint records
        receipts = [self._run_target(t, run_id, cutoff, _utc(now)) for t in self.targets]
        if self.metrics is not None:
            self.metrics.last_success.set(now)
            self.metrics.run_seconds.observe(time.perf_counter() - started)
        return receipts

    def _run_target(self, target: Target, run_id: str, cutoff: datetime, now: datetime) -> Receipt:
        started_at = now
        old = target.where(cutoff) if target.where is not None else target.time < cutoff
        with self.engine.begin() as conn:
            receipt_id = conn.execute(insert(retention_receipts).values(
                run_id=run_id, kind=target.kind, cutoff=cutoff, deleted=0, kept_on_hold=0,
                started_at=started_at)).inserted_primary_key[0]
        batch_no = 0
        while True:
            with self.engine.begin() as conn:
                # re-read every batch: a hold placed while the job runs is honoured at once
                kept = target.keep(conn) if target.keep is not None else None
                where = and_(old, ~kept) if kept is not None else old
                rows = conn.execute(select(target.key, target.time).where(where)
                                    .order_by(target.order if target.order is not None else target.time)
                                    .limit(self.batch_size)).all()
                if not rows:
                    break
                if target.before_delete is not None:
                    target.before_delete(conn, rows, now)
                keys = [r[0] for r in rows]
                deleted = conn.execute(delete(target.table).where(and_(target.key.in_(keys), where))).rowcount
                times = [_aware(r[1]) for r in rows]
                receipt = retention_receipts.c
                conn.execute(update(retention_receipts).where(receipt.id == receipt_id).values(
                    deleted=receipt.deleted + deleted,
                    oldest=func.coalesce(receipt.oldest, min(times)),
                    newest=max(times),
                ))
            if self.metrics is not None:
                self.metrics.deleted.labels(target.kind).inc(deleted)
            batch_no += 1
            if self.after_batch is not None:
                self.after_batch(target.kind, batch_no)
            if self.pause_s:
                time.sleep(self.pause_s)
        with self.engine.begin() as conn:
            kept_rows = 0
            kept = target.keep(conn) if target.keep is not None else None
            if kept is not None:
                kept_rows = conn.execute(select(func.count()).select_from(target.table).where(
                    and_(old, kept))).scalar_one()
            conn.execute(update(retention_receipts).where(retention_receipts.c.id == receipt_id)
                         .values(kept_on_hold=kept_rows, finished_at=now))
            row = conn.execute(select(retention_receipts).where(retention_receipts.c.id == receipt_id)).one()
        return _receipt(row._mapping)


def _receipt(m: Any) -> Receipt:
    return Receipt(m["run_id"], m["kind"], _aware(m["cutoff"]), m["deleted"], _aware(m["oldest"]),
                   _aware(m["newest"]), m["kept_on_hold"], _aware(m["started_at"]), _aware(m["finished_at"]))


def receipts(engine: Engine, limit: int = 100) -> list[Receipt]:
    with engine.connect() as conn:
        rows = conn.execute(select(retention_receipts).order_by(
            retention_receipts.c.started_at.desc(), retention_receipts.c.id.desc()).limit(limit))
        return [_receipt(r._mapping) for r in rows]


# -- legal holds ----------------------------------------------------------------------------------

HOLD_KINDS = ("alert", "case")


def place_hold(engine: Engine, kind: str, target_id: str, reason: str, by: str,
               now: float | None = None) -> int:
    if kind not in HOLD_KINDS:
        raise ValueError(f"a hold is on an alert or a case, not {kind!r}")
    if not reason.strip() or not by.strip():
        raise ValueError("a hold needs a reason and who placed it")
    with engine.begin() as conn:
        if kind == "alert":
            found = conn.execute(select(alerts.c.id).where(alerts.c.id == target_id)).first()
        else:
            found = conn.execute(select(cases.c.id).where(cast(cases.c.id, String) == target_id)).first()
        if found is None:
            raise ValueError(f"there is no {kind} {target_id!r}")
        return conn.execute(insert(holds).values(
            target_kind=kind, target_id=target_id, reason=reason, placed_by=by,
            placed_at=_utc(now if now is not None else time.time()))).inserted_primary_key[0]


def release_hold(engine: Engine, hold_id: int, reason: str, by: str, now: float | None = None) -> bool:
    if not reason.strip() or not by.strip():
        raise ValueError("releasing a hold needs a reason and who released it")
    with engine.begin() as conn:
        done = conn.execute(update(holds).where(and_(holds.c.id == hold_id, holds.c.released_at.is_(None)))
                            .values(released_by=by, release_reason=reason,
                                    released_at=_utc(now if now is not None else time.time()))).rowcount
    return bool(done)


def list_holds(engine: Engine, active_only: bool = False) -> list[dict[str, Any]]:
    q = select(holds).order_by(holds.c.placed_at.desc(), holds.c.id.desc())
    if active_only:
        q = q.where(holds.c.released_at.is_(None))
    with engine.connect() as conn:
        return [{k: _aware(v) if isinstance(v, datetime) else v for k, v in r._mapping.items()}
                for r in conn.execute(q)]
