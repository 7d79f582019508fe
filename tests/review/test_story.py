"""The person page's story: what is gathered (review/story.py) and what is drawn (review/story_chart.py),
on SQLite and PostgreSQL (``review_url``)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from detectors.activity_days import DayCounts
from detectors.reference import Staff
from review.story import Marker, Story, departure_window, own_baseline, peer_baseline
from review.story_chart import story_chart
from review.tables import audit_log
from stream.store.alerts import AlertStore

from .seed import NOW, login
from .story_seed import LEAVE, NOTICE, SPIKE, TODAY, build_story_app, day_counts, seed_story


def test_own_baseline_is_the_mean_of_the_days_before_from_the_first_day_on():
    d = date(2026, 3, 10)
    totals = {d - timedelta(days=1): 10, d - timedelta(days=2): 20}
    got = own_baseline(totals, [d], first=d - timedelta(days=4), window=28)
    assert got == {d: 30 / 4}  # four days since the first: 10 + 20 + 0 + 0
    assert own_baseline(totals, [d], first=None) == {}


def test_peer_baseline_counts_only_peers_employed_that_day():
    d = date(2026, 3, 10)
    staying = Staff("a", team="t", start_date="2020-01-01")
    not_started = Staff("b", team="t", start_date="2026-04-01")
    left = Staff("c", team="t", leave_date="2026-03-01", left_at=1772409600.0)  # midnight after 1 March
    assert peer_baseline({d: 30}, [staying, not_started, left], [d]) == {d: 30.0}


def test_departure_window_follows_the_departing_user_detector():
    s = Staff("a", notice_date="2026-03-01", notice_at=1772323200.0, leave_date="2026-03-31",
              left_at=1774915200.0 + 86400)
    cfg = {"before_days": 14, "after_days": 30, "notice_days": 30}
    assert departure_window(s, cfg) == (date(2026, 2, 15), date(2026, 4, 30))
    only_leave = Staff("a", leave_date="2026-03-31", left_at=1774915200.0 + 86400)
    assert departure_window(only_leave, cfg)[0] == date(2026, 2, 16)  # 30 days before 1 April, then 14
    assert departure_window(Staff("a"), cfg) is None


def _story() -> Story:
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(10)]
    s = Story("P-ABCD1234", days, team="Response North", peers=2, in_directory=True)
    s.counts = {days[2]: {"logon": 2, "export": 30}, days[3]: {"logon": 1}, days[9]: {"record_access": 5}}
    s.own = {d: 4.0 for d in days[3:]}
    s.peer = {d: 6.0 for d in days}
    s.alerts = [Marker(days[2], "critical alert: bulk_export", "critical", "/alerts/abc")]
    s.signals = [Marker(days[2], "risk signal: departing_user, data out departing", None, "/alerts/def")]
    s.departing = (days[5], days[20 - 11])
    return s


def test_the_chart_draws_days_baselines_marks_and_the_departure_window():
    svg = str(story_chart(_story()))
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title id=\"story-title\">" in svg
    assert "<desc id=\"story-desc\">10 days, 38 events on 3 of them." in svg
    bars = re.findall(r'<rect class="bar" data-kind="([a-z_ ]+)" data-day="([0-9-]+)"', svg)
    assert sorted(bars) == sorted([("logon", "2026-03-03"), ("export", "2026-03-03"), ("logon", "2026-03-04"),
                                   ("record_access", "2026-03-10")])
    assert svg.count('class="baseline own"') == 1 and svg.count('class="baseline peer"') == 1
    own_points = re.search(r'class="baseline own" points="([^"]+)"', svg).group(1).split()
    assert len(own_points) == 7  # the days with a baseline
    assert re.search(r'<a href="/alerts/abc"><circle class="alert" data-day="2026-03-03"', svg)
    assert re.search(r'<a href="/alerts/def"><polygon class="signal" data-day="2026-03-03"', svg)
    assert '<rect class="departing"' in svg and "Departure window 2026-03-06 to 2026-03-10" in svg
    assert "<script" not in svg and "style=" not in svg


def test_the_chart_escapes_what_it_writes():
    s = _story()
    s.counts[s.days[0]] = {"<b>kind</b>": 1}
    s.alerts.append(Marker(s.days[1], '"><script>alert(1)</script>', "high", "/alerts/x\"y"))
    svg = str(story_chart(s))
    assert "<script>" not in svg and "<b>kind" not in svg and 'x"y' not in svg


@pytest.fixture
def story_client(review_url, tmp_path, clock):
    alerts = seed_story(review_url)
    app = build_story_app(review_url, tmp_path, clock)
    with TestClient(app, follow_redirects=False) as c:
        yield c, alerts, app, review_url
    app.state.review.engine.dispose()


def test_the_person_page_tells_the_story_pseudonymised(story_client):
    client, alerts, app, _ = story_client
    login(client, "rita")
    pseudo = app.state.review.pseudo("u-bob")
    people = client.get("/subjects").text
    assert f'href="/people/{pseudo}"' in people
    page = client.get(f"/people/{pseudo}?days=60")
    assert page.status_code == 200
    html = page.text
    svg = html[html.index("<svg class=\"chart story\""):html.index("</svg>", html.index("chart story")) + 6]
    for raw in ("u-bob", "bob.raw", "u-carol", "u-dan", "MARKER-CONTENT"):
        assert raw not in html, raw
    assert pseudo in svg
    assert f'data-day="{SPIKE.isoformat()}"' in svg and 'data-kind="removable_media"' in svg
    assert 'class="baseline own"' in svg and 'class="baseline peer"' in svg
    assert svg.count('<circle class="alert"') == 2  # the bulk export and the person-risk alert
    assert svg.count('<polygon class="signal"') == 2  # the person-risk alert's two contributions
    assert f'<a href="/alerts/{alerts[0].id}">' in svg
    first, last = NOTICE - timedelta(days=14), LEAVE + timedelta(days=30)
    window = f"Departure window {first.isoformat()} to {last.isoformat()}"
    assert window in svg and '<rect class="departing"' in svg
    assert "Team: Response North (2 others in the peer group)" in html
    # peers' baseline is the team's mean (carol 20, dan 30 on a weekday), never erin's 401 of another team
    peer = re.search(r'class="baseline peer" points="([^"]+)"', svg).group(1)
    assert len(peer.split()) == 60
    assert '<td class="num">25.0</td>' in html and "401" not in html
    # over 180 days, the peer line starts at the peers' first recorded day (nothing was counted before)
    longer = client.get(f"/people/{pseudo}?days=180").text
    first = min(date.fromisoformat(d.day) for d in day_counts() if d.person == "u-carol")
    peer = re.search(r'class="baseline peer" points="([^"]+)"', longer).group(1)
    assert len(peer.split()) == (TODAY - first).days + 1
    with app.state.review.engine.connect() as conn:
        views = conn.execute(select(audit_log.c.target_type, audit_log.c.target_id)
                             .where(audit_log.c.target_type == "person")).all()
    assert views == [("person", pseudo)] * 2  # each view is audited, under the pseudonym


def test_unknown_people_and_ones_own_story_are_not_found(story_client):
    client, _, app, url = story_client
    login(client, "rita")
    assert client.get("/people/P-NOBODY00").status_code == 404
    assert client.get(f"/people/{app.state.review.pseudo('u-nobody')}").status_code == 404
    store = AlertStore(url)
    store.upsert_activity_days([DayCounts("u-rita", TODAY.isoformat(), {"logon": 1}, NOW)])
    store.dispose()
    assert client.get(f"/people/{app.state.review.pseudo('u-rita')}").status_code == 404  # her own story: hidden


def test_someone_alone_in_their_team_has_no_peer_baseline(story_client):
    client, _, app, _ = story_client
    login(client, "rita")
    erin = client.get(f"/people/{app.state.review.pseudo('u-erin')}?days=30").text
    assert "Team: CID" in erin and "No peer group baseline" in erin and 'class="departing"' not in erin


def test_the_api_gives_the_charts_numbers(story_client):
    client, alerts, app, _ = story_client
    login(client, "rita")
    pseudo = app.state.review.pseudo("u-bob")
    got = client.get(f"/api/people/{pseudo}/story?days=30").json()
    assert got["pseudonym"] == pseudo and got["team"] == "Response North" and got["peers"] == 2
    assert len(got["days"]) == 30 and got["days"][-1]["day"] == TODAY.isoformat()
    spike = next(d for d in got["days"] if d["day"] == SPIKE.isoformat())
    assert spike["counts"]["removable_media"] == 6 and spike["total"] > spike["own_baseline"] * 2
    assert {a["alert_id"] for a in got["alerts"]} == {alerts[0].id, alerts[1].id}
    assert len(got["signals"]) == 2 and got["departure_window"]["first"] == (NOTICE - timedelta(days=14)).isoformat()
    assert "u-bob" not in str(got) and "bob.raw" not in str(got)
    assert client.get("/api/people/P-NOBODY00/story").status_code == 404
