"""CSRF, inert HTML in evidence, cookies, login throttling, the proxy identity header, self-alerts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from stream.store.tables import alerts

from .conftest import build
from .seed import CSRF, PASSWORD, make_alert, seed

XSS = '<script>alert("x")</script><img src=x onerror="alert(2)">'


@pytest.fixture
def url(review_url):
    return review_url


def status_of(app, alert_id: str) -> str:
    with app.state.review.engine.connect() as conn:
        return conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id)).scalar_one()


def test_state_changes_without_a_csrf_token_are_rejected(app, client, url):
    from .seed import login

    a = seed(url, [make_alert("u-bob")])[0]
    csrf = login(client, "rob")
    form = {"status": "investigating"}
    assert client.post(f"/alerts/{a.id}/status", data=form).status_code == 403
    assert client.post(f"/alerts/{a.id}/status", data={**form, "csrf_token": "forged"}).status_code == 403
    assert client.post(f"/api/alerts/{a.id}/status", json=form).status_code == 403
    assert client.post(f"/api/alerts/{a.id}/status", json=form, headers={"X-CSRF-Token": "x"}).status_code == 403
    assert status_of(app, a.id) == "new"
    assert client.post(f"/alerts/{a.id}/status", data={**form, "csrf_token": csrf}).status_code == 303
    assert status_of(app, a.id) == "investigating"


def test_html_in_evidence_renders_inert_and_masked_by_default(client, url):
    from .seed import login

    a = seed(url, [make_alert("u-bob", content=XSS, title="<b>bold</b> title")])[0]
    csrf = login(client, "rob")
    page = client.get(f"/alerts/{a.id}")
    assert page.status_code == 200
    assert "<script>" not in page.text and "onerror=" not in page.text.replace("onerror=&#34;", "")
    assert "&lt;b&gt;bold&lt;/b&gt; title" in page.text
    assert "alert(" not in page.text  # content masked: not even escaped
    assert "masked" in page.text and "u-bob" not in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert client.get(f"/api/alerts/{a.id}").json()["evidence"][-1]["content"]["masked"] is True
    client.post(f"/alerts/{a.id}/reveal", data={"scope": "content", "reason": "need to read the message",
                                                "csrf_token": csrf})
    page = client.get(f"/alerts/{a.id}")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text and "<img" not in page.text
    assert "u-bob" not in page.text  # content revealed, identity still not


def test_session_cookie_flags(review_url, tmp_path, clock):
    app, _, _ = build(review_url, tmp_path, clock, cookie_secure=True)
    with TestClient(app, follow_redirects=False, base_url="https://testserver") as c:
        token = CSRF.search(c.get("/login").text).group(1)
        resp = c.post("/login", data={"username": "rob", "password": PASSWORD, "csrf_token": token})
        assert resp.status_code == 303
        cookie = next(h for h in resp.headers.get_list("set-cookie") if h.startswith("custodes_session="))
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    app.state.review.engine.dispose()


def test_login_is_throttled_per_account_and_counted(app_parts, client):
    _, registry, _ = app_parts

    def attempt(password: str, name: str = "rob"):
        client.cookies.clear()
        token = CSRF.search(client.get("/login").text).group(1)
        return client.post("/login", data={"username": name, "password": password, "csrf_token": token})

    for _ in range(5):
        assert attempt("wrong password").status_code == 401
    assert attempt(PASSWORD).status_code == 429  # even the right password, for a while
    assert attempt(PASSWORD, "sam").status_code == 303  # other accounts are not locked out
    assert registry.get_sample_value("custodes_review_logins_total", {"outcome": "failure"}) == 5
    assert registry.get_sample_value("custodes_review_logins_total", {"outcome": "throttled"}) == 1
    assert registry.get_sample_value("custodes_review_logins_total", {"outcome": "success"}) == 1


def test_unknown_accounts_and_wrong_passwords_look_the_same(client):
    token = CSRF.search(client.get("/login").text).group(1)
    a = client.post("/login", data={"username": "nobody", "password": "x", "csrf_token": token})
    token = CSRF.search(a.text).group(1)
    b = client.post("/login", data={"username": "rob", "password": "x", "csrf_token": token})
    assert a.status_code == b.status_code == 401
    assert "Wrong account name or password." in a.text and "Wrong account name or password." in b.text


def test_proxy_identity_header_is_ignored_unless_enabled(review_url, tmp_path, clock, client):
    assert client.get("/queue", headers={"X-Remote-User": "rob"}).status_code == 303
    app, _, _ = build(review_url, tmp_path, clock, proxy_auth=True, proxy_header="X-Forwarded-User")
    with TestClient(app, follow_redirects=False) as c:
        assert c.get("/queue", headers={"X-Remote-User": "rob"}).status_code == 303
        assert c.get("/queue", headers={"X-Forwarded-User": "nobody"}).status_code == 303
        r = c.get("/queue", headers={"X-Forwarded-User": "rob"})
        assert r.status_code == 200 and "rob · reviewer" in r.text
        assert c.get("/api/me", headers={"X-Forwarded-User": "aud"}).json()["name"] == "aud"  # switched
    app.state.review.engine.dispose()


def test_reviewers_never_see_alerts_about_themselves(client, url):
    from .seed import login

    own, other = seed(url, [make_alert("u-rita"), make_alert("u-bob")])
    login(client, "rita")  # rita's account is linked to monitored user u-rita
    ids = {r["id"] for r in client.get("/api/alerts").json()["items"]}
    assert ids == {other.id}
    assert client.get(f"/alerts/{own.id}").status_code == 404
    assert client.get(f"/api/alerts/{own.id}").status_code == 404
    assert len(client.get("/api/subjects").json()) == 1
    assert own.id not in client.get("/queue").text
    login(client, "rob")
    assert {r["id"] for r in client.get("/api/alerts").json()["items"]} == {own.id, other.id}


def test_openapi_document_needs_login(client):
    from .seed import login

    assert client.get("/api/openapi.json").status_code == 401
    assert client.get("/openapi.json").status_code in (303, 404)
    login(client, "rob")
    doc = client.get("/api/openapi.json").json()
    assert "/api/alerts" in doc["paths"] and "/api/alerts/{alert_id}/status" in doc["paths"]


# -- issue 14 item 9: login messages, HSTS, Permissions-Policy, throttling behind a proxy -----------


def test_the_login_page_shows_messages_from_a_fixed_set_only(client):
    planted = client.get("/login", params={"error": "Your account is locked: call 0800 123 456 now"})
    assert planted.status_code == 200
    assert "0800 123 456" not in planted.text and 'role="alert"' not in planted.text
    html = client.get("/login", params={"error": '<a href="https://evil.example">re-enter</a>'})
    assert "evil.example" not in html.text
    known = client.get("/login", params={"error": "throttled"})
    assert "Too many failed logins. Wait a few minutes and try again." in known.text


def test_permissions_policy_always_and_hsts_only_over_tls(review_url, tmp_path, clock):
    app, _, _ = build(review_url, tmp_path, clock, trusted_proxies="10.0.0.0/24")
    with TestClient(app, follow_redirects=False) as plain:
        r = plain.get("/login")
        assert "camera=()" in r.headers["permissions-policy"] and "geolocation=()" in r.headers["permissions-policy"]
        assert "strict-transport-security" not in r.headers
        # an untrusted client cannot claim TLS
        assert "strict-transport-security" not in plain.get("/login", headers={"X-Forwarded-Proto": "https"}).headers
    with TestClient(app, follow_redirects=False, base_url="https://testserver") as tls:
        assert tls.get("/login").headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    with TestClient(app, follow_redirects=False, client=("10.0.0.7", 4000)) as proxied:
        assert "strict-transport-security" in proxied.get("/login", headers={"X-Forwarded-Proto": "https"}).headers
        assert "strict-transport-security" not in proxied.get("/login", headers={"X-Forwarded-Proto": "http"}).headers
    app.state.review.engine.dispose()


def _fail_logins(c: TestClient, n: int, forwarded_for: str | None, name_prefix: str = "nobody") -> list[int]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    codes = []
    for i in range(n):
        c.cookies.clear()
        token = CSRF.search(c.get("/login").text).group(1)
        codes.append(c.post("/login", headers=headers, data={
            "username": f"{name_prefix}{i}", "password": "wrong password", "csrf_token": token}).status_code)
    return codes


def _good_login(c: TestClient, forwarded_for: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    c.cookies.clear()
    token = CSRF.search(c.get("/login").text).group(1)
    return c.post("/login", headers=headers, data={"username": "sam", "password": PASSWORD,
                                                   "csrf_token": token}).status_code


def test_behind_a_trusted_proxy_one_client_cannot_lock_everyone_out(review_url, tmp_path, clock):
    app, _, _ = build(review_url, tmp_path, clock, trusted_proxies="10.0.0.5", login_max_failures_per_client=3)
    with TestClient(app, follow_redirects=False, client=("10.0.0.5", 4000)) as proxy:
        # the attacker sprays names through the proxy: throttled by its own (forwarded) address
        assert _fail_logins(proxy, 4, "203.0.113.9") == [401, 401, 401, 429]
        # a spoofed left-most entry does not help: the proxy appends the real client on the right
        assert _fail_logins(proxy, 1, "198.51.100.1, 203.0.113.9", "other")[0] == 429
        # another client behind the same proxy still logs in
        assert _good_login(proxy, "198.51.100.20") == 303
    app.state.review.engine.dispose()


def test_without_a_trusted_proxy_the_forwarded_header_is_ignored(review_url, tmp_path, clock):
    app, _, _ = build(review_url, tmp_path, clock, login_max_failures_per_client=3)
    with TestClient(app, follow_redirects=False, client=("10.0.0.5", 4000)) as c:
        # rotating X-Forwarded-For does not give an attacker fresh keys: the peer is the key
        codes = [_fail_logins(c, 1, f"203.0.113.{i}", f"n{i}-")[0] for i in range(4)]
        assert codes == [401, 401, 401, 429]
    app.state.review.engine.dispose()


def test_trusted_proxies_are_validated():
    from review.config import ReviewConfig

    assert ReviewConfig.from_env({"CUSTODES_REVIEW_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16"}).trusted_proxies == (
        "10.0.0.5", "10.1.0.0/16")
    with pytest.raises(ValueError, match="not an IP address"):
        ReviewConfig.from_env({"CUSTODES_REVIEW_TRUSTED_PROXIES": "proxy.example"})
