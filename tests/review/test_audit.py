"""The hash-chained audit trail: a record per action, `custodes audit verify`, tampering detected."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import column, delete, insert, select, table, update

from review.audit import verify
from review.tables import audit_log
from stream.cli import main

from .conftest import AUDIT_KEY
from .seed import login, make_alert, seed


def run_verify(url: str, data_dir) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), "audit", "verify"],
                                env={"CUSTODES_DATABASE_URL": url, "CUSTODES_CONFIG": "",
                                     "CUSTODES_AUDIT_KEY": AUDIT_KEY})
    return result.exit_code, result.output


def actions(app) -> list[tuple[str, str, str]]:
    with app.state.review.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.target_id).order_by(audit_log.c.seq))]


def test_each_action_appends_a_record_and_the_chain_verifies(app, client, review_url, tmp_path):
    a = seed(review_url, [make_alert("u-bob")])[0]
    csrf = login(client, "rob")
    h = {"X-CSRF-Token": csrf}
    assert client.get(f"/alerts/{a.id}").status_code == 200
    assert client.post(f"/api/alerts/{a.id}/reveals", json={"scope": "content", "reason": "read the message"},
                       headers=h).status_code == 201
    assert client.post(f"/api/alerts/{a.id}/assign", json={"assignee": "rob"}, headers=h).status_code == 200
    assert client.post(f"/api/alerts/{a.id}/comments", json={"body": "hm"}, headers=h).status_code == 201
    assert client.post(f"/api/alerts/{a.id}/status", json={"status": "closed", "disposition": "benign",
                                                          "note": "approved task"}, headers=h).status_code == 200
    got = [(actor, action) for actor, action, _ in actions(app)]
    assert got[-7:] == [("rob", "login"), ("rob", "view"), ("rob", "reveal"), ("rob", "assign"),
                        ("rob", "comment"), ("rob", "status"), ("rob", "disposition")]
    code, out = run_verify(review_url, tmp_path)
    assert code == 0, out
    assert "intact" in out


def test_an_altered_record_is_named(app, client, review_url, tmp_path):
    a = seed(review_url, [make_alert("u-bob")])[0]
    csrf = login(client, "rob")
    for i in range(3):
        client.post(f"/api/alerts/{a.id}/comments", json={"body": f"c{i}"}, headers={"X-CSRF-Token": csrf})
    with app.state.review.engine.begin() as conn:
        seq = conn.execute(select(audit_log.c.seq).where(audit_log.c.action == "comment")
                           .order_by(audit_log.c.seq).limit(1).offset(1)).scalar_one()
        conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(actor="someone-else"))
    code, out = run_verify(review_url, tmp_path)
    assert code == 1
    assert f"#{seq}" in out and "altered" in out
    report = verify(app.state.review.engine, key=AUDIT_KEY.encode())
    assert (report.ok, report.broken_seq) == (False, seq)


def test_a_removed_record_is_detected(app, client, review_url, tmp_path):
    a = seed(review_url, [make_alert("u-bob")])[0]
    csrf = login(client, "rob")
    for i in range(3):
        client.post(f"/api/alerts/{a.id}/comments", json={"body": f"c{i}"}, headers={"X-CSRF-Token": csrf})
    with app.state.review.engine.begin() as conn:
        last = conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq.desc())).scalars().first()
        conn.execute(delete(audit_log).where(audit_log.c.seq == last - 1))
    code, out = run_verify(review_url, tmp_path)
    assert code == 1
    assert f"#{last}" in out and "missing" in out


def test_a_removed_tail_is_caught_against_the_remembered_head(app, client, review_url):
    a = seed(review_url, [make_alert("u-bob")])[0]
    csrf = login(client, "rob")
    client.post(f"/api/alerts/{a.id}/comments", json={"body": "x"}, headers={"X-CSRF-Token": csrf})
    with app.state.review.engine.begin() as conn:
        last = conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq.desc())).scalars().first()
        conn.execute(delete(audit_log).where(audit_log.c.seq == last))
    assert verify(app.state.review.engine, key=AUDIT_KEY.encode()).ok  # the chain alone cannot tell…
    login(client, "aud")
    report = client.get("/api/audit/verify").json()  # …but the app remembers the head it wrote
    assert report["ok"] is False and report["broken_seq"] == last


def test_auditors_read_and_filter_the_trail_and_the_metrics_follow(app_parts, client, review_url):
    app, registry, _ = app_parts
    a = seed(review_url, [make_alert("u-bob")])[0]
    csrf = login(client, "rob")
    client.post(f"/api/alerts/{a.id}/comments", json={"body": "x"}, headers={"X-CSRF-Token": csrf})
    login(client, "aud")
    data = client.get("/api/audit", params={"actor": "rob", "action": "comment"}).json()
    assert data["total"] == 1 and data["records"][0]["target_id"] == a.id
    page = client.get("/audit", params={"actor": "rob"})
    assert page.status_code == 200 and "Chain intact" in page.text
    assert client.get("/api/audit/verify").json()["ok"] is True
    assert registry.get_sample_value("custodes_audit_chain_valid") == 1
    assert registry.get_sample_value("custodes_review_actions_total", {"action": "comment"}) == 1
    with app.state.review.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.action == "comment").values(detail={"chars": 99}))
    assert client.get("/api/audit/verify").json()["ok"] is False
    assert registry.get_sample_value("custodes_audit_chain_valid") == 0
    assert registry.get_sample_value("custodes_audit_chain_last_verified_timestamp_seconds") > 0


# -- issue 14 item 8: a keyed chain, a signed head outside the database, failed logins ---------------


def _rewrite(engine, seq: int, *, version: int | None = None, all_plain: bool = False) -> None:
    """What someone with write access to the database but without the audit key can do: change record
    ``seq`` and recompute plain SHA-256 hashes (and links) from there to the head."""
    import hashlib

    from review.audit import canonical

    with engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq))]
        prev = None
        for rec in rows:
            if rec["seq"] == seq:
                rec["actor"] = "someone-else"
            if rec["seq"] >= seq or all_plain:
                if prev is not None:
                    rec["prev_hash"] = prev
                if version is not None or all_plain:
                    rec["hash_version"] = 1 if all_plain else version
                rec["hash"] = hashlib.sha256(canonical(rec)).hexdigest()
                conn.execute(update(audit_log).where(audit_log.c.seq == rec["seq"]).values(
                    actor=rec["actor"], prev_hash=rec["prev_hash"], hash=rec["hash"],
                    hash_version=rec["hash_version"]))
            prev = rec["hash"]


@pytest.mark.parametrize("how", ["keep_version", "downgrade", "all_plain"])
def test_a_rewritten_tail_with_recomputed_hashes_fails_offline(app, client, review_url, tmp_path, how):
    a = seed(review_url, [make_alert("u-bob")])[0]
    csrf = login(client, "rob")
    for i in range(4):
        client.post(f"/api/alerts/{a.id}/comments", json={"body": f"c{i}"}, headers={"X-CSRF-Token": csrf})
    engine = app.state.review.engine
    with engine.connect() as conn:
        seq = conn.execute(select(audit_log.c.seq).where(audit_log.c.action == "comment")
                           .order_by(audit_log.c.seq).limit(1).offset(1)).scalar_one()
    assert run_verify(review_url, tmp_path)[0] == 0
    _rewrite(engine, seq, version={"keep_version": None, "downgrade": 1, "all_plain": None}[how],
             all_plain=how == "all_plain")
    code, out = run_verify(review_url, tmp_path)
    assert code == 1, out
    expected = {"keep_version": "altered", "downgrade": "unkeyed record after keyed",
                "all_plain": "ends in unkeyed"}[how]
    assert expected in out
    assert AUDIT_KEY not in out


def test_verify_needs_the_key_and_never_makes_one_up(app, client, review_url, tmp_path):
    login(client, "rob")
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "elsewhere"), "audit", "verify"],
                                env={"CUSTODES_DATABASE_URL": review_url, "CUSTODES_CONFIG": ""})
    assert result.exit_code == 1 and "no audit key" in result.output
    assert not (tmp_path / "elsewhere" / "audit.key").exists()
    wrong = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "audit", "verify"],
                               env={"CUSTODES_DATABASE_URL": review_url, "CUSTODES_CONFIG": "",
                                    "CUSTODES_AUDIT_KEY": "w" * 40})
    assert wrong.exit_code == 1 and "altered" in wrong.output


def test_a_removed_tail_is_caught_offline_by_the_signed_head(app, client, review_url, tmp_path):
    from review.app import verify_chain

    a = seed(review_url, [make_alert("u-bob")])[0]
    csrf = login(client, "rob")
    client.post(f"/api/alerts/{a.id}/comments", json={"body": "x"}, headers={"X-CSRF-Token": csrf})
    assert verify_chain(app.state.review).ok  # the app's periodic verification writes the signed head
    head = orjson.loads((tmp_path / "audit-head.json").read_bytes())
    assert set(head) == {"seq", "hash", "at", "sig"}
    with app.state.review.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == head["seq"]))
    # a new process (the CLI) that never saw the app's memory still catches it
    code, out = run_verify(review_url, tmp_path)
    assert code == 1 and f"up to #{head['seq']} were removed" in out
    # and moving the head file back does not work without the key
    (tmp_path / "audit-head.json").write_bytes(orjson.dumps({**head, "seq": head["seq"] - 1}))
    code, out = run_verify(review_url, tmp_path)
    assert code == 1 and "signature does not match" in out


def test_an_upgraded_unkeyed_chain_verifies_once_sealed(database_url, tmp_path):
    """The upgrade path: records written before migration c14 are plain SHA-256 (version 1); they
    stay verifiable, and a keyed seal record covers them."""
    import hashlib
    from datetime import UTC, datetime

    from review.audit import GENESIS, canonical
    from stream.store.alerts import engine_for, migrate

    before_c14 = table("audit_log", *[column(c.name, c.type) for c in audit_log.c if c.name != "hash_version"])
    engine = engine_for(database_url)
    migrate(engine, "0004")
    prev = GENESIS
    with engine.begin() as conn:
        for seq in (1, 2, 3):
            rec = {"seq": seq, "ts": datetime(2026, 1, 1, 12, seq, tzinfo=UTC), "actor": "rob", "role": "reviewer",
                   "action": "view", "target_type": "alert", "target_id": f"a{seq}", "detail": {},
                   "prev_hash": prev}
            rec["hash"] = prev = hashlib.sha256(canonical(rec)).hexdigest()
            conn.execute(insert(before_c14), [rec])
    migrate(engine)
    engine.dispose()
    code, out = run_verify(database_url, tmp_path)
    assert code == 1 and "ends in unkeyed" in out and "custodes audit seal" in out
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "audit", "seal"],
                                env={"CUSTODES_DATABASE_URL": database_url, "CUSTODES_CONFIG": "",
                                     "CUSTODES_AUDIT_KEY": AUDIT_KEY})
    assert result.exit_code == 0 and "sealed at record #4" in result.output
    code, out = run_verify(database_url, tmp_path)
    assert code == 0 and "4 records" in out
    engine = engine_for(database_url)
    with engine.begin() as conn:  # the plain records are now covered by the keyed seal
        conn.execute(update(audit_log).where(audit_log.c.seq == 1).values(target_id="forged"))
    engine.dispose()
    _rewrite_plain_prefix(database_url)
    code, out = run_verify(database_url, tmp_path)
    assert code == 1 and "#4" in out


def _rewrite_plain_prefix(url: str) -> None:
    """Recompute the plain hashes of records 1..3 after the forgery (what an attacker would do)."""
    import hashlib

    from review.audit import GENESIS, canonical
    from stream.store.alerts import engine_for

    engine = engine_for(url)
    with engine.begin() as conn:
        prev = GENESIS
        for row in conn.execute(select(audit_log).where(audit_log.c.seq <= 3).order_by(audit_log.c.seq)).all():
            rec = {**row._mapping, "prev_hash": prev}
            prev = hashlib.sha256(canonical(rec)).hexdigest()
            conn.execute(update(audit_log).where(audit_log.c.seq == rec["seq"]).values(prev_hash=rec["prev_hash"],
                                                                                         hash=prev))
    engine.dispose()


def test_failed_logins_are_audit_records_without_the_password(app, client, review_url, tmp_path):
    from .seed import CSRF

    def attempt(name: str, password: str) -> int:
        client.cookies.clear()
        token = CSRF.search(client.get("/login").text).group(1)
        return client.post("/login", data={"username": name, "password": password, "csrf_token": token}).status_code

    assert attempt("rob", "Tr0ub4dor&3-secret") == 401
    assert attempt("Tr0ub4dor&3-typed-as-name", "x") == 401
    with app.state.review.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(audit_log).where(audit_log.c.action == "login_failed").order_by(audit_log.c.seq))]
    assert [(r["actor"], r["role"], r["detail"]["account_known"]) for r in rows[:1]] == [("rob", "reviewer", True)]
    assert rows[1]["actor"].startswith("unknown:P-") and rows[1]["role"] == "none"
    assert "Tr0ub4dor" not in repr(rows)
    assert run_verify(review_url, tmp_path)[0] == 0
