"""The operators' view of dead letters (admin only): reasons, sources, field paths and redacted
excerpts; never the bad input's values; every view recorded."""

from __future__ import annotations

import html
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from review.app import create_app
from review.config import ReviewConfig
from review.events import MemoryEmitter
from stream.contract.settings import Settings
from stream.worker.deadletters import letter

from .conftest import AUDIT_KEY, Clock
from .seed import PASSWORD, login

MARKER = "MARKER-SECRET-41c9"


def letters() -> list:
    worker = letter(1, 40, b'{"@timestamp": "2026-01-01T00:00:00Z", "user": {"id": "' + MARKER.encode() + b'\\u0000"}}',
                    [("custodes.reason", b"control_character"), ("custodes.field", b"user.id"),
                     ("custodes.detail", b"user.id holds a control character (C0, DEL or C1)"),
                     ("custodes.source.topic", b"custodes-audit-events"), ("custodes.source.partition", b"1"),
                     ("custodes.source.offset", b"7"), ("custodes.source.line", b"1")], at=1_770_000_000.0)
    ingest = letter(0, 3, b'{"oops": "' + MARKER.encode() + b'"', [
        ("custodes.reason", b"invalid_json"), ("custodes.detail", b"not valid JSON"),
        ("custodes.source.file", b"/logs/okta.jsonl"), ("custodes.source.line", b"12")], at=1_770_000_100.0)
    return [worker, ingest]


class Reader:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[int, str | None]] = []
        self.fail = fail

    def __call__(self, limit: int, reason: str | None):
        self.calls.append((limit, reason))
        if self.fail:
            raise ConnectionError("broker down")
        shown = [d for d in letters() if reason is None or d.reason == reason]
        return shown, Counter(d.reason for d in letters())


@pytest.fixture
def make_app(review_url, tmp_path):
    made = []

    def make(reader):
        settings = Settings(data_dir=tmp_path, database_url=review_url, audit_key=SecretStr(AUDIT_KEY))
        app = create_app(settings, registry=CollectorRegistry(), clock=Clock(),
                         config=ReviewConfig(cookie_secure=False), emitter=MemoryEmitter(), dead_letters=reader)
        made.append(app)
        return app

    make.engine = lambda: made[-1].state.review.engine
    yield make
    for app in made:
        app.state.review.engine.dispose()


def test_an_admin_sees_reasons_sources_fields_and_redacted_excerpts(make_app):
    reader = Reader()
    with TestClient(make_app(reader), follow_redirects=False) as c:
        login(c, "adam")
        page = c.get("/admin/deadletters")
        assert page.status_code == 200
        text = page.text
        assert "control character" in text and "invalid json" in text
        assert "<code>user.id</code>" in text and "/logs/okta.jsonl:12" in text
        assert "custodes-audit-events partition 1 offset 7" in text
        assert '"user":{"id":"<19 chars>"}' in html.unescape(text)  # the record's shape, its values replaced by lengths
        assert MARKER not in text  # never the bad input's values
        one = c.get("/admin/deadletters?reason=invalid_json").text
        assert "/logs/okta.jsonl:12" in one and "custodes-audit-events partition 1" not in one.split("Newest first")[1]
        assert reader.calls == [(200, None), (200, "invalid_json")]
    from review.audit import query

    records, _ = query(make_app.engine(), action="view")
    targets = {(r["target_type"], r["target_id"], r["actor"]) for r in records}
    assert {("dead_letters", "all", "adam"), ("dead_letters", "invalid_json", "adam")} <= targets


def test_only_admins_may_see_dead_letters(make_app):
    with TestClient(make_app(Reader()), follow_redirects=False) as c:
        for name in ("rita", "sam", "aud"):
            login(c, name)
            assert c.get("/admin/deadletters").status_code in (403, 404)
            assert "Dead letters" not in c.get("/queue" if name != "aud" else "/audit").text
        login(c, "adam")
        assert 'href="/admin/deadletters"' in c.get("/admin/users").text


def test_without_a_broker_or_with_a_broken_one_the_page_says_so(make_app):
    with TestClient(make_app(None), follow_redirects=False) as c:
        login(c, "adam")
        assert "No broker is configured" in c.get("/admin/deadletters").text
    with TestClient(make_app(Reader(fail=True)), follow_redirects=False) as c:
        login(c, "adam")
        page = c.get("/admin/deadletters")
        assert page.status_code == 200 and "could not read the dead-letter topic (ConnectionError)" in page.text


def test_the_dead_letter_page_in_chromium(make_app, browser):
    from tests.harness.browser import ARTIFACTS, served

    with served(make_app(Reader())) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "adam")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Log in')")
        page.wait_for_url("**/admin/users**")
        page.click("a:has-text('Dead letters')")
        page.wait_for_url("**/admin/deadletters")
        rows = page.locator("table.deadletters tbody tr")
        assert rows.count() == 2
        assert "invalid json" in rows.nth(0).inner_text()  # newest first
        assert MARKER not in page.content()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-dead-letters.png"), full_page=True)
        page.close()
