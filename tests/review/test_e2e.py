"""End to end in real headless Chromium: uvicorn serving the app on a free port, a seeded store, a
reviewer logs in, finds an alert, reveals its content with a reason, closes it with a disposition; the
audit trail holds every step, `custodes audit verify` passes, and fails once a record is tampered with.

Screenshots of the queue and the alert page go to test-artifacts/. Chromium is Debian's
(/usr/bin/chromium); without it the test skips locally and FAILS under CI=true.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from review.tables import audit_log
from stream.store.alerts import engine_for
from tests.harness.browser import ARTIFACTS
from tests.harness.browser import served as serve_app

from .conftest import Clock, add_accounts, build
from .seed import NOW, PASSWORD, T0, make_alert, seed
from .test_audit import run_verify


@pytest.fixture
def served(tmp_path):
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    add_accounts(url)
    seed(url, [
        make_alert("u-bob", severity="critical", score=92, ts=T0 - 600,
                   content='Sending you the list <script>alert("pwned")</script> <b>bold</b>',
                   title="Bulk export: 1,240 special-category records in 60 min"),
        make_alert("u-bob", severity="high", score=71, ts=T0 - 86400, title="Bulk export: 260 high-sensitivity "
                   "records in 60 min"),
        make_alert("u-carol", severity="medium", score=48, ts=T0 - 3 * 3600,
                   title="Bulk export: 1,310 medium-sensitivity records in 60 min"),
        make_alert("u-dan", severity="high", score=66, ts=T0 - 7200, title="Bulk export: 230 high-sensitivity "
                   "records in 60 min"),
        make_alert("u-rita", severity="high", score=80, ts=T0 - 60, title="Alert about the reviewer herself"),
    ])
    app, _, emitter = build(url, tmp_path, Clock(NOW))
    with serve_app(app) as base:
        yield base, url, app, emitter
    app.state.review.engine.dispose()


def test_reviewer_reveals_and_closes_an_alert_in_chromium(browser, served, tmp_path):
    base, url, app, emitter = served
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(f"{base}/queue")
    assert "/login" in page.url
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}/queue")
    assert page.locator("h1").inner_text() == "Alert queue"
    body = page.locator("body").inner_text()
    assert "Alert about the reviewer herself" not in body  # rita never sees alerts about herself
    assert "u-bob" not in body
    page.select_option("select[name=sort]", "risk")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**sort=risk**")
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)

    page.click("text=Bulk export: 1,240 special-category records in 60 min")
    page.wait_for_url(f"{base}/alerts/**")
    assert "masked" in page.locator("ol.timeline").inner_text()
    assert "Sending you the list" not in page.content()
    page.select_option("#reveal-form select[name=scope]", "content")
    page.fill("#reveal-form textarea[name=reason]", "Need to read the message to judge intent")
    page.click("#reveal-form button")
    page.wait_for_url("**done=revealed")
    timeline = page.locator("ol.timeline").inner_text()
    assert '<script>alert("pwned")</script>' in timeline  # shown as text…
    assert dialogs == []  # …never run
    assert page.locator("ol.timeline b").count() == 0
    page.screenshot(path=str(ARTIFACTS / "review-alert.png"), full_page=True)

    page.select_option("#close-form select[name=disposition]", "true_positive")
    page.fill("#close-form textarea[name=note]", "Export had no business reason; referred to PSD.")
    page.click("#close-form button")
    page.wait_for_url("**done=status")
    assert "Closed as" in page.locator("body").inner_text()
    page.close()

    engine = engine_for(url)
    with engine.connect() as conn:
        trail = [tuple(r) for r in conn.execute(select(audit_log.c.actor, audit_log.c.action)
                                                  .where(audit_log.c.actor == "rita").order_by(audit_log.c.seq))]
    assert [a for _, a in trail] == ["login", "view", "reveal", "view", "status", "disposition", "view"]
    assert [e["event"]["action"] for e in emitter.events][-3:] == ["close", "disposition", "view"]
    code, out = run_verify(url, tmp_path)
    assert code == 0, out
    with engine.begin() as conn:
        seq = conn.execute(select(audit_log.c.seq).where(audit_log.c.action == "reveal")).scalar_one()
        conn.execute(update(audit_log).where(audit_log.c.seq == seq)
                     .values(detail={"scope": "content", "reason": "routine check"}))
    engine.dispose()
    code, out = run_verify(url, tmp_path)
    assert code == 1 and f"#{seq}" in out
