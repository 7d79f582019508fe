"""The review app's data under the retention window, and the audit chain across deletions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, update

from review.audit import AuditTrail, verify
from review.tables import audit_checkpoints, audit_log, case_alerts, cases, comments, reveals, sessions, users
from stream.retention import Retention, place_hold
from stream.store import AlertStore
from tests.stream.test_store import make_alert

DAY = 86_400
WINDOW = 730 * DAY
NOW = 1_800_000_000.0
OLD = NOW - WINDOW - 10 * DAY
RECENT = NOW - DAY
KEY = b"retention-test-audit-key-" + b"k" * 32


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@pytest.fixture
def engine(database_url):
    store = AlertStore(database_url)
    yield store.engine
    store.dispose()


def audit(engine, ts: float, n: int, action: str = "view") -> None:
    trail = AuditTrail(engine, lambda: ts, key=KEY)
    for i in range(n):
        with trail.transaction() as conn:
            trail.append(conn, actor="rev1", role="reviewer", action=action, target_type="alert",
                         target_id=f"a{i}")


def run(engine, batch_size: int = 500):
    return {r.kind: r for r in Retention(engine, WINDOW, audit_key=KEY, clock=lambda: NOW, pause_s=0,
                                          batch_size=batch_size).run()}


def test_old_audit_records_go_and_the_rest_of_the_chain_still_verifies(engine):
    audit(engine, OLD, 7)
    audit(engine, RECENT, 3)
    assert verify(engine, key=KEY).ok
    receipts = run(engine, batch_size=3)  # 7 old records in three batches: three checkpoints
    assert receipts["audit_trail"].deleted == 7
    with engine.connect() as conn:
        seqs = conn.execute(select(audit_log.c.seq, audit_log.c.action).order_by(audit_log.c.seq)).all()
        cp = conn.execute(select(audit_checkpoints)).one()
    assert [s for s, _ in seqs][:3] == [8, 9, 10]
    assert [a for _, a in seqs[3:]] == ["retention"] * 3  # each batch attested in the chain
    assert cp.seq == 7
    report = verify(engine, key=KEY)
    assert report.ok, report.describe()
    # the trail goes on from there
    audit(engine, NOW, 1)
    assert verify(engine, key=KEY).ok


def test_a_forged_checkpoint_is_caught(engine):
    audit(engine, OLD, 4)
    audit(engine, RECENT, 2)
    run(engine)
    with engine.begin() as conn:  # someone deletes recent records and moves the checkpoint to hide it
        conn.execute(audit_log.delete().where(audit_log.c.seq.in_([5, 6])))
        last = conn.execute(select(audit_log.c.seq, audit_log.c.prev_hash)
                            .order_by(audit_log.c.seq).limit(1)).one()
        conn.execute(update(audit_checkpoints).values(seq=last.seq - 1, hash=last.prev_hash))
    report = verify(engine, key=KEY)
    assert not report.ok
    assert "not attested" in report.problem


def test_when_every_record_is_old_the_chain_continues_from_the_checkpoint(engine):
    audit(engine, OLD, 5)
    run(engine)
    with engine.connect() as conn:
        left = conn.execute(select(audit_log.c.seq, audit_log.c.action)).all()
    assert [tuple(r) for r in left] == [(6, "retention")]
    audit(engine, NOW, 2)
    report = verify(engine, key=KEY)
    assert report.ok and report.head_seq == 8


def test_review_records_past_the_window_are_deleted_unless_held(engine):
    store_alerts = [dataclasses.replace(make_alert(n), ts=OLD, first_seen=OLD, last_seen=OLD) for n in (1, 2)]
    from stream.store import alert_row
    from stream.tables import alerts

    with engine.begin() as conn:
        for a in store_alerts:
            conn.execute(insert(alerts).values(**alert_row(a, utc(OLD))))
        uid = conn.execute(insert(users).values(name="rev1", role="reviewer", created_at=utc(OLD),
                                                   updated_at=utc(OLD))
                           ).inserted_primary_key[0]
        conn.execute(insert(sessions).values(token_hash="old", user_id=uid, csrf_token="c",
                                             created_at=utc(OLD), last_seen=utc(OLD)))
        conn.execute(insert(sessions).values(token_hash="new", user_id=uid, csrf_token="c",
                                             created_at=utc(RECENT), last_seen=utc(RECENT)))
        for ts in (OLD, RECENT):
            conn.execute(insert(reveals).values(account="rev1", alert_id=store_alerts[0].id, scope="identity",
                                                reason="checking the evidence", status="approved",
                                                requested_at=utc(ts)))
        held_case = conn.execute(insert(cases).values(subject="s", title="held", status="closed",
                                                      created_by="rev1", created_at=utc(OLD),
                                                      updated_at=utc(OLD))).inserted_primary_key[0]
        closed_case = conn.execute(insert(cases).values(subject="s", title="closed", status="closed",
                                                        created_by="rev1", created_at=utc(OLD),
                                                        updated_at=utc(OLD))).inserted_primary_key[0]
        conn.execute(insert(case_alerts).values(case_id=closed_case, alert_id=store_alerts[1].id,
                                                added_by="rev1", added_at=utc(RECENT)))
        conn.execute(insert(comments).values(case_id=held_case, author="rev1", body="keep", created_at=utc(OLD)))
        conn.execute(insert(comments).values(alert_id=store_alerts[1].id, author="rev1", body="go",
                                             created_at=utc(OLD)))
    place_hold(engine, "case", str(held_case), "misconduct hearing", "dpo", now=NOW)
    place_hold(engine, "alert", store_alerts[0].id, "IOPC referral", "dpo", now=NOW)

    receipts = run(engine)
    assert (receipts["alerts"].deleted, receipts["alerts"].kept_on_hold) == (1, 1)
    assert receipts["review_sessions"].deleted == 1
    assert receipts["review_reveals"].deleted == 1
    assert (receipts["review_comments"].deleted, receipts["review_comments"].kept_on_hold) == (1, 1)
    assert (receipts["review_cases"].deleted, receipts["review_cases"].kept_on_hold) == (1, 1)
    with engine.connect() as conn:
        assert conn.execute(select(sessions.c.token_hash)).scalars().all() == ["new"]
        assert conn.execute(select(comments.c.body)).scalars().all() == ["keep"]
        assert conn.execute(select(cases.c.title)).scalars().all() == ["held"]
        assert conn.execute(select(case_alerts.c.alert_id)).all() == []  # went with its case
