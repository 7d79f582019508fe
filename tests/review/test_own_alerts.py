"""An account never sees, reveals, closes or exports an alert or case about its own holder.

The holder is recognised by the account name (what the app's own review events carry as ``user.id``
when no monitored user id is linked, so ``reviewer_watch`` alerts about an unlinked account have the
account name as subject) and by the linked monitored user id. Every route of the role table
(tests/review/test_routes.py) that names an alert, a case or a reveal request is tried by linked and
unlinked accounts of every role against objects about themselves, and every list is searched for them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from detectors.registry import build as build_detectors
from review.auth import Account, add_user
from review.tables import reveals, users
from stream.contract.schema import validate
from stream.store.alerts import AlertStore

from .conftest import PASSWORD_HASH, Clock, add_accounts, build
from .seed import NOW, login, make_alert, seed
from .test_routes import TABLE, _fill

ROLES = ("reviewer", "supervisor", "auditor", "admin")
SELF_ACCOUNTS = {
    f"{role}-{kind}": (role, f"u-{role}-{kind}" if kind == "linked" else None)
    for role in ROLES
    for kind in ("linked", "unlinked")
}
OBJECT_ROUTES = [
    (m, p, b, allowed)
    for m, p, b, allowed in TABLE
    if any(k in p or k in str(b) for k in ("{alert}", "{alert2}", "{case}", "{reveal}"))
]


def add_self_accounts(url: str) -> None:
    add_accounts(url)
    app_engine = AlertStore(url, migrate_schema=False).engine
    with app_engine.begin() as conn:
        for name, (role, linked) in SELF_ACCOUNTS.items():
            add_user(conn, name, role, None, linked, datetime.fromtimestamp(NOW, UTC))
        conn.execute(update(users).values(password_hash=PASSWORD_HASH))
    app_engine.dispose()


def account(app, name: str) -> Account:
    with app.state.review.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).one()
    return Account(row.id, row.name, row.role, row.linked_user_id)


def objects_about(app, url: str, subject: str) -> dict[str, str]:
    """Two alerts about ``subject``, a case (opened by rob, an unrelated reviewer) and a pending reveal."""
    a1, a2 = seed(url, [make_alert(subject), make_alert(subject)])
    review = app.state.review.review
    case_id = review.create_case(account(app, "rob"), a1.id, "about them")
    with app.state.review.engine.begin() as conn:
        reveal_id = conn.execute(
            reveals.insert().values(
                account="rob",
                alert_id=a1.id,
                scope="identity",
                reason="a pending request",
                status="pending",
                requested_at=datetime.fromtimestamp(NOW, UTC),
            )
        ).inserted_primary_key[0]
    return {
        "alert": a1.id,
        "alert2": a2.id,
        "case": str(case_id),
        "reveal": str(reveal_id),
        "user": "rob",
        "newname": "nobody-new",
        "pseudonym": review.pseudo(subject),
    }


def call(client: TestClient, csrf: str, method: str, path: str, body, ids: dict[str, str]):
    url = path.format(**ids)
    if method == "GET":
        return client.get(url)
    if path.startswith("/api/"):
        return client.post(url, json=_fill(body, ids), headers={"X-CSRF-Token": csrf})
    return client.post(url, data={**_fill(body, ids), "csrf_token": csrf})


def test_own_alerts_and_cases_are_out_of_reach_for_every_role_linked_or_not(database_url, tmp_path):
    add_self_accounts(database_url)
    app, _, _ = build(database_url, tmp_path, Clock())
    try:
        with TestClient(app, follow_redirects=False) as control, TestClient(app, follow_redirects=False) as c:
            control_csrf = login(control, "sam")  # an unrelated supervisor sees all of it
            for name, (role, linked) in SELF_ACCOUNTS.items():
                csrf = login(c, name)
                for subject in (name, linked) if linked else (name,):
                    ids = objects_about(app, database_url, subject)
                    assert control.get(f"/api/alerts/{ids['alert']}").status_code == 200
                    assert control.get(f"/api/cases/{ids['case']}").status_code == 200
                    assert ids["reveal"] in {str(r["id"]) for r in control.get("/api/reveals").json()}
                    for method, path, body, allowed in OBJECT_ROUTES:
                        resp = call(c, csrf, method, path, body, ids)
                        expected = 403 if allowed[role] == 403 else 404  # its role may not, or: not found
                        assert resp.status_code == expected, (name, subject, method, path, resp.text[-500:])
                    if role not in ("reviewer", "supervisor"):
                        continue
                    lists = [
                        c.get(p).text
                        for p in ("/queue", "/subjects", "/cases", "/api/alerts", "/api/subjects", "/api/cases")
                    ]
                    lists += [c.get(f"/cases/{ids['case']}").text]
                    if role == "supervisor":
                        lists += [c.get("/reveals").text, c.get("/api/reveals").text]
                    for text in lists:
                        assert ids["alert"] not in text and ids["pseudonym"] not in text, (name, subject)
                    assert f'"id":{ids["case"]},' not in c.get("/api/cases").text
                    assert c.get("/api/alerts", params={"subject": ids["pseudonym"]}).json()["total"] == 0
                    # and nobody can hand the alert to them
                    r = control.post(
                        f"/api/alerts/{ids['alert']}/assign",
                        json={"assignee": name},
                        headers={"X-CSRF-Token": control_csrf},
                    )
                    assert r.status_code == 400, (name, r.text)
                    view = control.get(f"/alerts/{ids['alert']}").text
                    assert f'<option value="{name}"' not in view
    finally:
        app.state.review.engine.dispose()


def test_an_unlinked_reviewers_own_actions_raise_an_alert_they_cannot_see(review_url, tmp_path):
    """The end-to-end case: rob (no linked id) reveals often; the app's own review events go through the
    reviewer_watch detector, whose alert has the account name as subject; rob cannot see or close it."""
    app, _, emitter = build(review_url, tmp_path, Clock())
    try:
        others = seed(review_url, [make_alert(f"u-other-{i}") for i in range(3)])
        with TestClient(app, follow_redirects=False) as c:
            csrf = login(c, "rob")
            for a in others:
                r = c.post(
                    f"/api/alerts/{a.id}/reveals",
                    json={"scope": "identity", "reason": "need the name"},
                    headers={"X-CSRF-Token": csrf},
                )
                assert r.status_code == 201
            det = build_detectors({"reviewer_watch": {"max_reveals": 2}})
            watcher = next(d for d in det if d.id == "reviewer_watch")
            events = [validate(e) for e in emitter.events if e["custodes"]["activity"] == "review"]
            assert {e.user_id for e in events} == {"rob"}
            _, got = watcher.process("rob", events, None, lambda: NOW)
            assert [(a.detector, a.subject) for a in got] == [("reviewer_watch", "rob")]
            seed(review_url, got)
            mine = got[0].id
            assert mine not in c.get("/api/alerts").text and mine not in c.get("/queue").text
            assert c.get(f"/api/alerts/{mine}").status_code == 404
            r = c.post(
                f"/api/alerts/{mine}/status",
                json={"status": "closed", "disposition": "benign", "note": "nothing to see"},
                headers={"X-CSRF-Token": csrf},
            )
            assert r.status_code == 404
            csrf = login(c, "rita")  # another reviewer sees it
            assert c.get(f"/api/alerts/{mine}").status_code == 200
    finally:
        app.state.review.engine.dispose()


@pytest.mark.parametrize(("linked", "expected"), [(None, ("bob",)), ("u-bob", ("bob", "u-bob")), ("bob", ("bob",))])
def test_own_identities(linked, expected):
    from review.queries import own_identities

    assert own_identities(Account(1, "bob", "reviewer", linked)) == expected
