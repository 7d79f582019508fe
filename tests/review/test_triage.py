"""Queue, alert page, triage, reveals, cases, events and metrics, against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from review.tables import cases
from stream.store.retention import holds

from .conftest import build
from .seed import T0, login, make_alert, seed


def api(client, csrf):
    def post(path, body, expect=None):
        r = client.post(path, json=body, headers={"X-CSRF-Token": csrf})
        if expect is not None:
            assert r.status_code == expect, r.text
        return r

    return post


def test_queue_filters_counts_sort_and_pages(app, client, review_url):
    seeded = seed(review_url, [
        make_alert("u-a", severity="critical", score=90, ts=T0 - 86400),
        make_alert("u-a", severity="medium", score=50, ts=T0),
        *[make_alert(f"u-{i}", severity="high", score=60 + i, ts=T0 - i * 3600) for i in range(1, 31)],
    ])
    csrf = login(client, "rob")
    post = api(client, csrf)
    post(f"/api/alerts/{seeded[2].id}/status", {"status": "investigating"}, 200)
    q = client.get("/api/alerts").json()
    assert q["total"] == 32 and q["pages"] == 2 and len(q["items"]) == 25
    assert q["counts"] == {"new": 31, "investigating": 1, "closed": 0}
    assert q["items"][0]["id"] == seeded[1].id  # newest first
    assert client.get("/api/alerts", params={"sort": "risk"}).json()["items"][0]["id"] == seeded[0].id
    assert len(client.get("/api/alerts", params={"page": 2}).json()["items"]) == 7
    assert client.get("/api/alerts", params={"severity": "critical"}).json()["total"] == 1
    assert client.get("/api/alerts", params={"status": "investigating"}).json()["items"][0]["assignee"] == "rob"
    assert client.get("/api/alerts", params={"assignee": "rob"}).json()["total"] == 1
    pseudonym = q["items"][0]["pseudonym"]
    assert pseudonym.startswith("P-") and "u-a" not in client.get("/queue").text
    assert client.get("/api/alerts", params={"subject": pseudonym}).json()["total"] == 2
    assert client.get("/api/alerts", params={"subject": "u-a"}).json()["total"] == 0  # raw ids do not work
    page = client.get("/queue", params={"from": "2026-02-01", "to": "2026-02-01", "severity": "critical"})
    assert page.status_code == 200 and seeded[0].id in page.text and seeded[1].id not in page.text
    ranked = client.get("/api/subjects").json()
    assert ranked[0]["pseudonym"] == pseudonym and ranked[0]["open_alerts"] == 2


def test_alert_page_has_explanation_timeline_runbook_and_related(client, review_url):
    a, b = seed(review_url, [make_alert("u-bob"), make_alert("u-bob", ts=T0 - 3600)])
    login(client, "rob")
    page = client.get(f"/alerts/{a.id}").text
    assert "Within 60 minutes of event time" in page
    assert "Evidence timeline" in page and "csv_export" in page and "record access" in page
    assert "Runbook: bulk export" in page and "Check first" in page
    assert f"/alerts/{b.id}" in page  # related alert of the same person


def test_triage_close_needs_disposition_and_note_reopen_needs_supervisor(app, client, review_url):
    a = seed(review_url, [make_alert("u-bob")])[0]
    post = api(client, login(client, "rob"))
    post(f"/api/alerts/{a.id}/status", {"status": "closed"}, 400)
    post(f"/api/alerts/{a.id}/status", {"status": "closed", "disposition": "benign"}, 400)
    post(f"/api/alerts/{a.id}/status", {"status": "closed", "disposition": "nonsense", "note": "x"}, 422)
    post(f"/api/alerts/{a.id}/status", {"status": "closed", "disposition": "duplicate", "note": "same as #1"}, 200)
    post(f"/api/alerts/{a.id}/status", {"status": "closed", "disposition": "benign", "note": "x"}, 409)
    view = client.get(f"/api/alerts/{a.id}").json()
    assert (view["status"], view["disposition"]) == ("closed", "duplicate")
    assert view["comments"][-1]["body"] == "Closed as duplicate: same as #1"
    post(f"/api/alerts/{a.id}/status", {"status": "investigating"}, 403)
    post = api(client, login(client, "sam"))
    post(f"/api/alerts/{a.id}/status", {"status": "investigating"}, 200)
    assert client.get(f"/api/alerts/{a.id}").json()["disposition"] is None
    post(f"/api/alerts/{a.id}/assign", {"assignee": "nobody"}, 400)
    post(f"/api/alerts/{a.id}/assign", {"assignee": "rob"}, 200)


def test_reveal_lasts_a_limited_time(client, review_url, clock):
    a = seed(review_url, [make_alert("u-bob", content="the message")])[0]
    post = api(client, login(client, "rob"))
    post(f"/api/alerts/{a.id}/reveals", {"scope": "identity", "reason": "short"}, 400)  # reason too short
    post(f"/api/alerts/{a.id}/reveals", {"scope": "identity", "reason": "contact the line manager"}, 201)
    view = client.get(f"/api/alerts/{a.id}").json()
    assert view["subject"] == "u-bob" and view["evidence"][-1]["content"]["masked"] is True
    clock.now += 14 * 60
    assert client.get(f"/api/alerts/{a.id}").json()["subject"] == "u-bob"
    clock.now += 2 * 60
    assert client.get(f"/api/alerts/{a.id}").json()["subject"] is None


def test_reveal_with_supervisor_approval(review_url, tmp_path, clock, make_client):
    app, _, _ = build(review_url, tmp_path, clock, reveal_needs_approval=True)
    a = seed(review_url, [make_alert("u-bob", content="the message")])[0]
    from fastapi.testclient import TestClient

    with TestClient(app, follow_redirects=False) as rob, TestClient(app, follow_redirects=False) as sam:
        post_rob, post_sam = api(rob, login(rob, "rob")), api(sam, login(sam, "sam"))
        rid = post_rob(f"/api/alerts/{a.id}/reveals", {"scope": "content", "reason": "read the message"},
                       201).json()["id"]
        assert rob.get(f"/api/alerts/{a.id}").json()["evidence"][-1]["content"]["masked"] is True
        post_rob(f"/api/reveals/{rid}/decision", {"approve": True}, 403)  # reviewers cannot approve
        sam_rid = post_sam(f"/api/alerts/{a.id}/reveals", {"scope": "identity", "reason": "need the name"},
                           201).json()["id"]
        post_sam(f"/api/reveals/{sam_rid}/decision", {"approve": True}, 403)  # nor anyone their own request
        assert [r["id"] for r in sam.get("/api/reveals").json()] == [rid, sam_rid]
        assert "read the message" in sam.get("/reveals").text
        post_sam(f"/api/reveals/{rid}/decision", {"approve": True}, 200)
        post_sam(f"/api/reveals/{rid}/decision", {"approve": False}, 409)
        assert rob.get(f"/api/alerts/{a.id}").json()["evidence"][-1]["content"] == "the message"
    app.state.review.engine.dispose()


def test_cases_group_one_persons_alerts_hold_and_export(app, client, review_url):
    a, b, other = seed(review_url, [make_alert("u-bob"), make_alert("u-bob"), make_alert("u-eve")])
    post = api(client, login(client, "rob"))
    cid = post("/api/cases", {"alert_id": a.id, "title": "Bob exports"}, 201).json()["id"]
    post(f"/api/cases/{cid}/alerts", {"alert_id": b.id}, 200)
    post(f"/api/cases/{cid}/alerts", {"alert_id": b.id}, 409)
    post(f"/api/cases/{cid}/alerts", {"alert_id": other.id}, 400)  # another person
    post(f"/api/cases/{cid}", {"notes": "spoke to the manager", "status": "open"}, 200)
    post(f"/api/cases/{cid}/comments", {"body": "first comment"}, 201)
    post(f"/api/cases/{cid}/hold", {"hold": True, "reason": "referral"}, 403)
    case = client.get(f"/api/cases/{cid}").json()
    assert {x["id"] for x in case["alerts"]} == {a.id, b.id} and case["notes"] == "spoke to the manager"
    post = api(client, login(client, "sam"))
    post(f"/api/cases/{cid}/hold", {"hold": True, "reason": "misconduct referral PSD-7"}, 200)
    with app.state.review.engine.connect() as conn:
        assert conn.execute(select(cases.c.legal_hold).where(cases.c.id == cid)).scalar_one()
        held = conn.execute(select(holds.c.target_kind, holds.c.target_id, holds.c.released_at)).all()
    assert [(k, t, r) for k, t, r in held] == [("case", str(cid), None)]
    export = client.get(f"/api/cases/{cid}/export").json()
    assert len(export["alerts"]) == 2 and "u-bob" not in str(export)
    assert export["alerts"][0]["evidence"][-1]["content"]["masked"] is True
    assert "Bob exports" in client.get(f"/cases/{cid}").text
    post(f"/api/cases/{cid}/hold", {"hold": False, "reason": "proceedings over"}, 200)
    with app.state.review.engine.connect() as conn:
        assert conn.execute(select(holds.c.released_by)).scalar_one() == "sam"


def test_actions_are_emitted_as_review_events(app_parts, client, review_url):
    _, _, emitter = app_parts
    a = seed(review_url, [make_alert("u-bob")])[0]
    post = api(client, login(client, "rita"))
    post(f"/api/alerts/{a.id}/comments", {"body": "x"}, 201)
    ev = emitter.events[-1]
    assert ev["custodes"]["activity"] == "review" and ev["event"]["action"] == "comment"
    assert ev["user"] == {"id": "u-rita", "name": "rita"}  # linked monitored id
    assert ev["custodes"]["subject"] == {"id": "u-bob"}  # whom the action concerns (reviewer_watch)
    post(f"/api/alerts/{a.id}/reveals", {"scope": "identity", "reason": "contact the manager"}, 201)
    post(f"/api/alerts/{a.id}/status", {"status": "closed", "disposition": "benign", "note": "ok"}, 200)
    assert [e["event"]["action"] for e in emitter.events[-3:]] == ["reveal_identity", "close", "disposition"]
    from stream.contract.schema import validate

    parsed = validate(emitter.events[-3])
    assert (parsed.kind, parsed.user_id, parsed.action) == ("review", "u-rita", "reveal_identity")
    login(client, "rob")
    assert emitter.events[-1]["user"]["id"] == "rob"  # no linked id: the account name


def test_queue_metrics_at_scrape_time(app_parts, client, review_url, clock):
    _, registry, _ = app_parts
    seed(review_url, [make_alert("u-bob"), make_alert("u-eve")])
    assert registry.get_sample_value("custodes_review_queue_alerts", {"status": "new"}) == 2
    assert registry.get_sample_value("custodes_review_queue_alerts", {"status": "closed"}) == 0
    clock.now += 3600
    assert registry.get_sample_value("custodes_review_oldest_open_alert_age_seconds") >= 3600
    text = client.get("/metrics").text
    assert "custodes_review_queue_alerts{status=\"new\"} 2.0" in text
    assert "rob" not in text and "u-bob" not in text


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_non_triage_roles_land_on_their_own_page(client, role):
    name = {"auditor": "aud", "admin": "adam"}[role]
    client.cookies.clear()
    from .seed import CSRF, PASSWORD

    token = CSRF.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token})
    assert r.headers["location"] == {"auditor": "/audit", "admin": "/admin/users"}[role]


def test_sigma_alert_page_shows_rule_level_tags_and_false_positives(client, review_url):
    from dataclasses import replace

    alert = replace(make_alert("u-carol", detector="sigma", title="Sigma: Document shared by anonymous link"),
                    facts={"rule_id": "8b1e5d40-7c2f-4e6a-b3d9-2f4a6c8e0d17",
                           "rule_title": "Document shared by anonymous link", "level": "medium",
                           "rule_file": "config/rules/anonymous_link_share.yml",
                           "tags": ["attack.exfiltration", "attack.t1567.002"],
                           "falsepositives": ["Public material deliberately shared by link"]})
    (a,) = seed(review_url, [alert])
    login(client, "rob")
    page = client.get(f"/alerts/{a.id}").text
    assert "Sigma rule" in page and "8b1e5d40-7c2f-4e6a-b3d9-2f4a6c8e0d17" in page
    assert "attack.t1567.002" in page and "Known false positives" in page
    assert "Public material deliberately shared by link" in page


def test_people_page_ranks_by_person_risk_and_shows_its_contributions(client, review_url):
    import dataclasses

    from detectors.alert import alert_id

    contributions = [
        {"indicator": "risky_destination", "reason": "paste_leak_upload", "points": 60.0, "signals": 1,
         "event_ids": ["e-1"], "last_seen": T0, "note": "upload pastebin.com"},
        {"indicator": "off_hours", "reason": "activity", "points": 30.0, "signals": 2, "event_ids": ["e-2"],
         "last_seen": T0, "note": "activity at Sat 02:00"},
    ]
    person = dataclasses.replace(
        make_alert("u-person", severity="critical", score=90.0), id=alert_id("person_risk", "u-person", "episode:1"),
        detector="person_risk", facts={"risk": 90.0, "half_life_days": 7.0, "contributions": contributions})
    seed(review_url, [person, make_alert("u-other", severity="high", score=70.0)])
    login(client, "rob")
    ranked = client.get("/api/subjects").json()
    assert [r["open_alerts"] for r in ranked] == [1, 1]
    top = ranked[0]
    assert 80 < top["person_risk"] <= 90 and top["risk"] == top["person_risk"]  # decayed from last_seen to now
    assert [c["reason"] for c in top["contributions"]] == ["paste_leak_upload", "activity"]
    assert ranked[1]["person_risk"] == 0.0 and not ranked[1]["contributions"]
    page = client.get("/subjects").text
    assert "risky_destination paste leak upload (60)" in page and "off_hours activity (30)" in page
