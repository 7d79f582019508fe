"""Every route x every role -> the expected status, in one table and one parametrised test.

Pages answer an anonymous client with a redirect to /login (303) and the API with 401; a logged-in
account whose role may not use the route gets 403. State-changing requests carry a valid CSRF token
here (the CSRF tests are in test_security.py), so the table is about authorisation only. Each case
gets fresh objects ({alert}, {case}, …) so the order of the cases does not matter.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from review.auth import Account
from stream.store.alerts import AlertStore

from .conftest import ACCOUNTS, Clock, add_accounts, build
from .seed import login, make_alert

ROLES = ("anon", "reviewer", "supervisor", "auditor", "admin")
ACCOUNT_OF = {"reviewer": "rob", "supervisor": "sam", "auditor": "aud", "admin": "adam"}


def statuses(anon: int, reviewer: int, supervisor: int, auditor: int, admin: int) -> dict[str, int]:
    return dict(zip(ROLES, (anon, reviewer, supervisor, auditor, admin), strict=True))


def triage(ok: int, anon: int = 303) -> dict[str, int]:
    return statuses(anon, ok, ok, 403, 403)


def supervisor(ok: int, anon: int = 303) -> dict[str, int]:
    return statuses(anon, 403, ok, 403, 403)


def auditor(ok: int, anon: int = 303) -> dict[str, int]:
    return statuses(anon, 403, 403, ok, 403)


def admin(ok: int, anon: int = 303) -> dict[str, int]:
    return statuses(anon, 403, 403, 403, ok)


def everyone(ok: int, anon: int = 303) -> dict[str, int]:
    return statuses(anon, ok, ok, ok, ok)


# (method, path, form or JSON body, expected by role)
TABLE: list[tuple[str, str, dict | None, dict[str, int]]] = [
    # public
    ("GET", "/health", None, everyone(200, anon=200)),
    ("GET", "/ready", None, everyone(200, anon=200)),
    ("GET", "/metrics", None, everyone(200, anon=200)),
    ("GET", "/login", None, everyone(303, anon=200)),  # logged in: straight on to the app
    ("POST", "/login", {"username": "x", "password": "y"}, everyone(403, anon=403)),  # no login-form token
    # pages
    ("GET", "/", None, everyone(303)),
    ("POST", "/logout", {}, everyone(303)),
    ("GET", "/queue", None, triage(200)),
    ("GET", "/subjects", None, triage(200)),
    ("GET", "/alerts/{alert}", None, triage(200)),
    ("POST", "/alerts/{alert}/assign", {"assignee": "rob"}, triage(303)),
    ("POST", "/alerts/{alert}/status", {"status": "investigating"}, triage(303)),
    ("POST", "/alerts/{alert}/comments", {"body": "looked at it"}, triage(303)),
    ("POST", "/alerts/{alert}/reveal", {"scope": "identity", "reason": "need to contact the manager"},
     triage(303)),
    ("POST", "/alerts/{alert}/case", {"title": "t"}, triage(303)),
    ("GET", "/reveals", None, supervisor(200)),
    ("POST", "/reveals/{reveal}/decision", {"decision": "approve"}, supervisor(303)),
    ("GET", "/cases", None, triage(200)),
    ("GET", "/cases/{case}", None, triage(200)),
    ("POST", "/cases/{case}", {"status": "open", "notes": "n"}, triage(303)),
    ("POST", "/cases/{case}/comments", {"body": "c"}, triage(303)),
    ("POST", "/cases/{case}/hold", {"hold": "on", "reason": "referral PSD-1"}, supervisor(303)),
    ("GET", "/cases/{case}/export", None, supervisor(200)),
    ("GET", "/audit", None, auditor(200)),
    ("GET", "/admin/users", None, admin(200)),
    ("GET", "/admin/deadletters", None, admin(200)),
    ("POST", "/admin/users", {"name": "{newname}", "role": "reviewer", "password": "a long password 1"},
     admin(303)),
    ("POST", "/admin/users/{user}/disable", {}, admin(303)),
    # API
    ("GET", "/api/openapi.json", None, everyone(200, anon=401)),
    ("GET", "/api/me", None, everyone(200, anon=401)),
    ("GET", "/api/alerts", None, triage(200, anon=401)),
    ("GET", "/api/alerts/{alert}", None, triage(200, anon=401)),
    ("POST", "/api/alerts/{alert}/assign", {"assignee": None}, triage(200, anon=401)),
    ("POST", "/api/alerts/{alert}/status", {"status": "investigating"}, triage(200, anon=401)),
    ("POST", "/api/alerts/{alert}/comments", {"body": "x"}, triage(201, anon=401)),
    ("POST", "/api/alerts/{alert}/reveals", {"scope": "content", "reason": "checking the message"},
     triage(201, anon=401)),
    ("GET", "/api/subjects", None, triage(200, anon=401)),
    ("GET", "/api/reveals", None, supervisor(200, anon=401)),
    ("POST", "/api/reveals/{reveal}/decision", {"approve": False}, supervisor(200, anon=401)),
    ("GET", "/api/cases", None, triage(200, anon=401)),
    ("POST", "/api/cases", {"alert_id": "{alert}"}, triage(201, anon=401)),
    ("GET", "/api/cases/{case}", None, triage(200, anon=401)),
    ("POST", "/api/cases/{case}", {"notes": "n"}, triage(200, anon=401)),
    ("POST", "/api/cases/{case}/alerts", {"alert_id": "{alert2}"}, triage(200, anon=401)),
    ("POST", "/api/cases/{case}/comments", {"body": "x"}, triage(201, anon=401)),
    ("POST", "/api/cases/{case}/hold", {"hold": True, "reason": "referral"}, supervisor(200, anon=401)),
    ("GET", "/api/cases/{case}/export", None, supervisor(200, anon=401)),
    ("GET", "/api/audit", None, auditor(200, anon=401)),
    ("GET", "/api/audit/verify", None, auditor(200, anon=401)),
]

CASES = [
    pytest.param(method, path, body, role, expected[role], id=f"{method} {path} as {role}")
    for method, path, body, expected in TABLE
    for role in ROLES
]


class World:
    """One app on SQLite for the whole table, a logged-in client per role."""

    def __init__(self, tmp_path) -> None:
        self.url = f"sqlite:///{tmp_path / 'routes.db'}"
        add_accounts(self.url)
        self.app, _, _ = build(self.url, tmp_path, Clock())
        self.review = self.app.state.review.review
        self.clients: dict[str, TestClient] = {}
        self.csrf: dict[str, str] = {}
        self.n = itertools.count(1)
        for role in ROLES:
            self.clients[role], self.csrf[role] = self.client(role)

    def client(self, role: str) -> tuple[TestClient, str]:
        c = TestClient(self.app, follow_redirects=False)
        c.__enter__()
        return c, (login(c, ACCOUNT_OF[role]) if role != "anon" else "")

    def fresh(self) -> dict[str, str]:
        n = next(self.n)
        subject = f"u-subject-{n}"
        a1, a2 = make_alert(subject), make_alert(subject)
        store = AlertStore(self.url, migrate_schema=False)
        store.upsert_alerts([a1, a2])
        store.dispose()
        rob = Account(*self._ids("rob"))
        case_id = self.review.create_case(rob, a1.id, "case")
        with self.review.act(rob) as act:
            from review.tables import reveals, users

            reveal_id = act.conn.execute(reveals.insert().values(
                account="rob", alert_id=a1.id, scope="identity", reason="a pending request", status="pending",
                requested_at=datetime.now(UTC))).inserted_primary_key[0]
            act.conn.execute(users.insert().values(
                name=f"victim{n}", role="reviewer", password_hash=None, disabled=False,
                created_at=datetime.now(UTC), updated_at=datetime.now(UTC)))
        return {"alert": a1.id, "alert2": a2.id, "case": str(case_id), "reveal": str(reveal_id),
                "user": f"victim{n}", "newname": f"new{n}"}

    def _ids(self, name: str) -> tuple[int, str, str, str | None]:
        from sqlalchemy import select

        from review.tables import users

        with self.app.state.review.engine.connect() as conn:
            row = conn.execute(select(users.c.id).where(users.c.name == name)).one()
        role, linked = ACCOUNTS[name]
        return row.id, name, role, linked

    def close(self) -> None:
        for c in self.clients.values():
            c.__exit__(None, None, None)
        self.app.state.review.engine.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("routes"))
    yield w
    w.close()


def _fill(value, ids: dict[str, str]):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), CASES)
def test_route_role_table(world: World, method, path, body, role, expected):
    ids = world.fresh()
    url = path.format(**ids)
    client, csrf = world.clients[role], world.csrf.get(role, "")
    if path == "/logout" and role != "anon":  # logging out ends the session: use a throwaway one
        client, csrf = world.client(role)
    if method == "GET":
        resp = client.get(url)
    elif path.startswith("/api/"):
        headers = {"X-CSRF-Token": csrf} if role != "anon" else {}
        resp = client.post(url, json=_fill(body, ids), headers=headers)
    else:
        data = dict(_fill(body, ids))
        if role != "anon" and path != "/login":
            data["csrf_token"] = csrf
        resp = client.post(url, data=data)
    assert resp.status_code == expected, resp.text[-1500:]
    if role == "anon" and expected == 303 and path not in ("/login",):
        assert resp.headers["location"].startswith("/login?next=")


def test_the_table_covers_every_route(world: World):
    from review.api import router as api_router
    from review.pages import router as pages_router

    all_routes = [*world.app.routes, *pages_router.routes, *api_router.routes]
    routes = {(m, r.path) for r in all_routes if isinstance(r, APIRoute) for m in r.methods - {"HEAD"}}
    covered = {(m, p.replace("{alert}", "{alert_id}").replace("{case}", "{case_id}")
                .replace("{reveal}", "{reveal_id}").replace("{user}", "{name}")) for m, p, _, _ in TABLE}
    assert routes - covered == set(), "routes missing from the role table"
    assert covered - routes == set(), "table rows for routes that do not exist"
