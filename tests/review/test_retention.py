"""The review app's data under the retention window, and the audit chain across deletions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, update

from review.audit import AuditTrail, verify
from review.tables import audit_checkpoints, audit_log, case_alerts, cases, comments, reveals, sessions, users
from stream.store.alerts import AlertStore
from stream.store.retention import Retention, place_hold
from tests.stream.store.test_store import make_alert

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
    from stream.store.alerts import alert_row
    from stream.store.tables import alerts

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


# -- issue 14 item 6: every record by the age of its newest personal content ------------------------


def _insert_alert(conn, n: int, ts: float, first_seen: float | None = None) -> str:
    from stream.store.alerts import alert_row
    from stream.store.tables import alerts

    a = dataclasses.replace(make_alert(n), ts=ts, first_seen=first_seen or ts, last_seen=ts)
    conn.execute(insert(alerts).values(**alert_row(a, utc(ts))))
    return a.id


def _case(conn, title: str, status: str, updated: float, created: float = OLD, hold: bool = False) -> int:
    return conn.execute(insert(cases).values(subject="u-alice", title=title, status=status, notes="n",
                                             legal_hold=hold, created_by="rev1", created_at=utc(created),
                                             updated_at=utc(updated))).inserted_primary_key[0]


def _too_old(conn, cutoff: datetime) -> dict[str, list[dict]]:
    """Rows of every table in the database whose every timestamp is before the cutoff (SQL, reflected:
    a table added later is checked too)."""
    from sqlalchemy import DateTime, MetaData, and_, or_

    meta = MetaData()
    meta.reflect(conn)
    out = {}
    for name, table in meta.tables.items():
        times = [c for c in table.c if isinstance(c.type, DateTime)]
        if not times:
            continue
        old = and_(or_(*[c.is_not(None) for c in times]), *[or_(c.is_(None), c < cutoff) for c in times])
        rows = [dict(r._mapping) for r in conn.execute(select(table).where(old))]
        if rows:
            out[name] = rows
    return out


def test_every_kind_of_record_goes_by_the_age_of_its_newest_personal_content(engine):
    from stream.store.tables import alerts, holds, retention_receipts

    with engine.begin() as conn:
        old_alert = _insert_alert(conn, 1, OLD)
        recent_alert = _insert_alert(conn, 2, RECENT, first_seen=OLD)  # evidence since long ago, newest recent
        held_alert = _insert_alert(conn, 3, OLD)
        open_old = _case(conn, "open, untouched", "open", OLD)
        closed_old = _case(conn, "closed, untouched", "closed", OLD)
        commented = _case(conn, "old but commented lately", "open", OLD)
        recent_case = _case(conn, "recent", "open", RECENT)
        held_case = _case(conn, "held", "open", OLD, hold=True)
        for case_id, alert_id, ts in ((open_old, recent_alert, OLD), (recent_case, old_alert, RECENT),
                                      (held_case, held_alert, OLD), (closed_old, old_alert, OLD)):
            conn.execute(insert(case_alerts).values(case_id=case_id, alert_id=alert_id, added_by="rev1",
                                                    added_at=utc(ts)))
        for values in (
            {"alert_id": recent_alert, "body": "old comment on a live alert", "created_at": utc(OLD)},
            {"alert_id": old_alert, "body": "recent comment on an old alert", "created_at": utc(RECENT)},
            {"alert_id": old_alert, "kind": "disposition", "body": "Closed as benign: recent closing note",
             "created_at": utc(RECENT)},
            {"case_id": open_old, "body": "old note on an open case", "created_at": utc(OLD)},
            {"case_id": commented, "body": "still working on it", "created_at": utc(RECENT)},
            {"case_id": held_case, "body": "held", "created_at": utc(OLD)},
            {"alert_id": recent_alert, "body": "recent comment", "created_at": utc(RECENT)},
        ):
            conn.execute(insert(comments).values(author="rev1", **values))
        for alert_id, ts in ((recent_alert, OLD), (old_alert, RECENT), (recent_alert, RECENT)):
            conn.execute(insert(reveals).values(account="rev1", alert_id=alert_id, scope="identity",
                                                reason="checking the evidence", status="approved",
                                                requested_at=utc(ts), decided_by="rev1", decided_at=utc(ts)))
        active = conn.execute(insert(users).values(name="rev1", role="reviewer", created_at=utc(OLD),
                                                   updated_at=utc(OLD))).inserted_primary_key[0]
        gone = conn.execute(insert(users).values(name="left-the-force", role="reviewer", disabled=True,
                                                 linked_user_id="u-left", created_at=utc(OLD),
                                                 updated_at=utc(OLD))).inserted_primary_key[0]
        for token, uid, ts in (("old", active, OLD), ("new", active, RECENT), ("gone", gone, OLD)):
            conn.execute(insert(sessions).values(token_hash=token, user_id=uid, csrf_token="c",
                                                 created_at=utc(ts), last_seen=utc(ts)))
        conn.execute(insert(holds).values(target_kind="alert", target_id=old_alert, reason="old referral",
                                          placed_by="dpo", placed_at=utc(OLD - DAY), released_by="dpo",
                                          released_at=utc(OLD), release_reason="closed"))
        conn.execute(insert(retention_receipts).values(run_id="r" * 32, kind="alerts", cutoff=utc(OLD - WINDOW),
                                                       deleted=1, kept_on_hold=0, started_at=utc(OLD),
                                                       finished_at=utc(OLD)))
    place_hold(engine, "alert", held_alert, "IOPC referral", "dpo", now=NOW)
    place_hold(engine, "case", str(held_case), "misconduct hearing", "dpo", now=NOW)
    audit(engine, OLD, 3)
    audit(engine, RECENT, 2)

    receipts = run(engine, batch_size=2)

    cutoff = utc(NOW - WINDOW)
    with engine.connect() as conn:
        too_old = _too_old(conn, cutoff)
        # what may stay although old: records under legal hold, active accounts and holds (current
        # configuration), and the chain's checkpoint (a seq and a hash)
        assert {r["id"] for r in too_old.pop("alerts", [])} == {held_alert}
        # (a case's newest content includes its comments: "commented" has one from yesterday)
        assert {r["id"] for r in too_old.pop("cases", [])} == {held_case, commented}
        assert {r["body"] for r in too_old.pop("comments", [])} == {"held"}
        assert {r["case_id"] for r in too_old.pop("case_alerts", [])} == {held_case}
        assert {r["name"] for r in too_old.pop("users", [])} == {"rev1"}
        assert all(r["released_at"] is None for r in too_old.pop("holds", []))
        too_old.pop("audit_checkpoints", None)
        assert too_old == {}
        # nothing hangs off a deleted alert or case
        left_cases = set(conn.execute(select(cases.c.id)).scalars())
        left_alerts = set(conn.execute(select(alerts.c.id)).scalars())
        assert left_cases == {commented, recent_case, held_case}
        assert left_alerts == {recent_alert, held_alert}
        for row in conn.execute(select(comments)).mappings():
            assert row["alert_id"] in left_alerts or row["case_id"] in left_cases, row
        assert set(conn.execute(select(case_alerts.c.alert_id)).scalars()) <= left_alerts
        assert set(conn.execute(select(case_alerts.c.case_id)).scalars()) <= left_cases
        assert set(conn.execute(select(reveals.c.alert_id)).scalars()) == {recent_alert}
        assert conn.execute(select(comments.c.body).where(comments.c.kind == "disposition")).all() == []
        assert set(conn.execute(select(users.c.name)).scalars()) == {"rev1"}
        assert set(conn.execute(select(sessions.c.token_hash)).scalars()) == {"new"}
    # the open case went with a receipt; the held one was counted as kept
    assert (receipts["review_cases"].deleted, receipts["review_cases"].kept_on_hold) == (2, 1)
    assert receipts["review_accounts"].deleted == 1
    assert receipts["retention_receipts"].deleted == 1
    assert receipts["released_holds"].deleted == 1
    assert receipts["audit_trail"].deleted == 3
    assert verify(engine, key=KEY).ok


def test_a_job_clock_ahead_of_the_wall_clock_finishes(engine):
    """Item 7: the record attesting the audit checkpoint is stamped with the job's clock, so it is never
    itself past the cutoff (stamped with the wall clock, each batch deleted the previous one's record)."""
    import time as _time

    from stream.store.retention import Interrupted

    wall = _time.time()
    audit(engine, wall - DAY, 5)
    job = Retention(engine, WINDOW, audit_key=KEY, clock=lambda: wall + WINDOW + 30 * DAY, pause_s=0,
                    batch_size=2)
    batches = []

    def bounded(kind: str, n: int) -> None:
        if kind == "audit_trail":
            batches.append(n)
            if len(batches) > 20:
                raise Interrupted

    job.after_batch = bounded
    receipts = {r.kind: r for r in job.run()}
    assert receipts["audit_trail"].deleted == 5 and len(batches) == 3
    with engine.connect() as conn:
        left = conn.execute(select(audit_log.c.action, audit_log.c.ts)).all()
    assert [a for a, _ in left] == ["retention"] * 3
    assert all(_aware(ts).timestamp() == pytest.approx(wall + WINDOW + 30 * DAY) for _, ts in left)
    assert verify(engine, key=KEY).ok
    # and the next run (same clock) deletes nothing more
    again = {r.kind: r for r in Retention(engine, WINDOW, audit_key=KEY, clock=lambda: wall + WINDOW + 30 * DAY,
                                          pause_s=0).run()}
    assert again["audit_trail"].deleted == 0


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def test_reviewers_are_warned_before_an_alert_or_case_is_deleted(app, client, review_url):
    from .seed import NOW as APP_NOW
    from .seed import login, make_alert, seed

    soon, later = seed(review_url, [make_alert("u-bob", ts=APP_NOW - WINDOW + 10 * DAY),
                                    make_alert("u-bob", ts=APP_NOW - WINDOW + 40 * DAY)])
    csrf = login(client, "sam")  # a supervisor: may place a legal hold
    page = client.get(f"/alerts/{soon.id}").text
    assert "Retention: this alert" in page and "(in 10 days)" in page
    assert "Retention:" not in client.get(f"/alerts/{later.id}").text  # 40 days ahead: no warning yet
    case_id = client.post("/api/cases", json={"alert_id": later.id, "title": "quiet case"},
                          headers={"X-CSRF-Token": csrf}).json()["id"]
    assert "Retention:" not in client.get(f"/cases/{case_id}").text
    with app.state.review.engine.begin() as conn:  # nobody touched the case for 710 days
        conn.execute(update(cases).where(cases.c.id == case_id).values(updated_at=utc(APP_NOW - WINDOW + 20 * DAY)))
    page = client.get(f"/cases/{case_id}").text
    assert "Retention: this case" in page and "(in 20 days)" in page and "open or closed" in page
    assert "deleted by retention on" in client.get("/cases").text  # the list flags it too
    client.post(f"/cases/{case_id}/hold", data={"hold": "on", "reason": "misconduct hearing 2026/3",
                                                "csrf_token": csrf})
    assert "Retention:" not in client.get(f"/cases/{case_id}").text  # held: kept past the window
    assert "deleted by retention on" not in client.get("/cases").text
