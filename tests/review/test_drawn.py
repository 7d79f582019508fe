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


@pytest.fixture
def served_story(tmp_path):
    from .story_seed import build_story_app, seed_story

    url = f"sqlite:///{tmp_path / 'story.db'}"
    add_accounts(url)
    alerts = seed_story(url)
    app = build_story_app(url, tmp_path, Clock(NOW))
    with serve_app(app) as base:
        yield base, alerts, app
    app.state.review.engine.dispose()


def test_the_person_page_draws_the_persons_story(browser, served_story):
    from .story_seed import SPIKE

    base, alerts, app = served_story
    pseudo = app.state.review.pseudo("u-bob")
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}/queue")
    page.goto(f"{base}/subjects")
    page.click(f"a.pseudo:has-text('{pseudo}')")  # the People page leads to the person's story
    page.wait_for_url(f"{base}/people/{pseudo}")
    chart = page.locator("figure.story-chart svg")
    box = chart.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 200  # drawn, not an empty box
    # the spike day's stack is the tallest bar group; ordinary days are drawn too
    spike = page.locator(f"svg rect.bar[data-day='{SPIKE.isoformat()}']")
    assert spike.count() == 5  # logon, record access, export, removable media, web upload
    spike_height = sum(spike.nth(i).bounding_box()["height"] for i in range(spike.count()))
    ordinary = page.locator("svg rect.bar[data-day='2026-01-28']")
    assert ordinary.count() == 2
    ordinary_height = sum(ordinary.nth(i).bounding_box()["height"] for i in range(2))
    assert spike_height > 2.5 * ordinary_height > 0
    for selector in ("polyline.baseline.own", "polyline.baseline.peer", "rect.departing"):
        b = page.locator(f"figure.story-chart svg {selector}").bounding_box()
        assert b and b["width"] > 100, selector
    assert page.locator("svg circle.alert").count() == 2
    assert page.locator("svg polygon.signal").count() == 2
    # masked stays masked: no raw identity, alias or content anywhere on the page, the chart included
    content = page.content()
    for raw in ("u-bob", "bob.raw@force.example", "MARKER-CONTENT-7f3a"):
        assert raw not in content, raw
    assert chart.get_attribute("role") == "img"
    assert page.locator("#story-title").text_content().startswith(f"Activity per day of {pseudo}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-person-story.png"), full_page=True)
    # an alert on the chart is a link to it, without any script
    page.locator("svg circle.alert").first.click()
    page.wait_for_url(f"{base}/alerts/*")
    assert page.url.rsplit("/", 1)[1] in {a.id for a in alerts}
    assert csp_errors == []
    page.close()
