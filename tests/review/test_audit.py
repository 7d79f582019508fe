"""The hash-chained audit trail: a record per action, `custodes audit verify`, tampering detected."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import delete, select, update

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
