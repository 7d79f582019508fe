"""The alert page in real Chromium: the window chart is drawn under the CSP, masked content stays
masked in it, facts read as words, and pseudonyms and times never wrap."""

from __future__ import annotations

import pytest

from tests.harness.browser import ARTIFACTS
from tests.harness.browser import served as serve_app

from .conftest import Clock, add_accounts, build
from .seed import NOW, PASSWORD, T0, make_alert, seed

MARKER = "MARKER-CONTENT-7f3a"


@pytest.fixture
def served(tmp_path):
    url = f"sqlite:///{tmp_path / 'drawn.db'}"
    add_accounts(url)
    alerts = [make_alert("u-bob", severity="critical", score=92, ts=T0 - 600, content=MARKER)]
    alerts += [make_alert("u-bob", ts=T0 - 3600 * i, title="Bulk export: a long title " + "x" * 60) for i in (2, 3)]
    seed(url, alerts)
    app, _, _ = build(url, tmp_path, Clock(NOW))
    with serve_app(app) as base:
        yield base, alerts
    app.state.review.engine.dispose()


def test_the_alert_page_draws_its_window_against_the_threshold(browser, served):
    base, alerts = served
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}/queue")
    page.goto(f"{base}/alerts/{alerts[0].id}")
    chart = page.locator("figure.chart svg")
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 40  # drawn, not an empty box
    assert page.locator("figure.chart svg rect.bar").count() == 1  # records against the threshold
    assert page.locator("figure.chart svg line.limit").count() == 1
    assert page.locator("figure.chart svg circle.event").count() == 2  # the two evidence events
    bar = page.locator("figure.chart svg rect.bar").first.bounding_box()
    assert bar and bar["width"] > 50  # 270 of a scale to ~297: most of the plot
    assert MARKER not in page.content()  # masked content is masked everywhere, the chart included
    facts = page.locator("dl.facts").inner_text()
    assert "Window\n1 hour" in facts and "Threshold (records)\n200" in facts and "window s" not in facts
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-alert-chart.png"), full_page=True)
    # pseudonyms and times stay on one line, even in narrow table cells with long titles beside them
    lines = "e => { const r = document.createRange(); r.selectNodeContents(e); return r.getClientRects().length }"
    for selector in ("td .pseudo", "td.small", "p.sub .pseudo"):
        cells = page.locator(selector)
        assert cells.count() >= 1, selector
        assert {cells.nth(i).evaluate(lines) for i in range(cells.count())} == {1}, selector
    assert csp_errors == []
    page.close()
