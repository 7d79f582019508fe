import pytest

from detectors.reviewer_watch import ReviewerWatch

from .helpers import T0, ev, example_reference, one_by_one, run

REF = example_reference()


def review(ts=T0, action="reveal_identity", user="rv-4001", about=None, team=None):
    subject = {k: v for k, v in (("id", about), ("team", team)) if v}
    return ev(user, ts, "review", action=action, doc={"custodes": {"subject": subject}} if subject else {})


def det(**knobs):
    return ReviewerWatch.configure(knobs, REF)


@pytest.mark.parametrize("n, alerts", [(20, 0), (21, 1), (22, 1)])
def test_reveal_threshold_edges(n, alerts):
    _, got = run(det(), [[review(T0 + i * 60) for i in range(n)]])
    assert len(got) == alerts
    if alerts:
        (a,) = got.values()
        assert a.count == n - 20 and a.facts["reveals"] == n and "more than 20" in a.explanation


def test_views_do_not_count_as_reveals_and_the_window_slides():
    assert not run(det(), [[review(T0 + i, action="view") for i in range(50)]])[1]
    spread = [review(T0 + i * 4320) for i in range(21)]  # 21 reveals over 25.2 hours
    assert not run(det(), [spread])[1]


@pytest.mark.parametrize("kwargs, key", [
    ({"action": "view", "about": "rv-4001"}, "self"),
    ({"action": "view", "about": "pc-1001", "user": "rv-4002"}, "own_team"),  # team from the directory
    ({"action": "close", "team": "Response North", "user": "rv-4002"}, "own_team"),  # team on the event
    ({"action": "view", "about": "pc-1001"}, None),  # rv-4001 is in another team
    ({"action": "export_report", "about": "rv-4001"}, None),  # not a watched action
])
def test_own_team_and_self(kwargs, key):
    _, got = run(det(), [[review(**kwargs)]])
    assert [a.facts["key"] for a in got.values()] == ([key] if key else [])


def test_batching_and_expiry():
    events = [review(T0 + i * 30) for i in range(25)]
    state, whole = run(det(), [events])
    _, split = run(det(), one_by_one(events))
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}
    state, _ = run(det(), [[ev("rv-4001", T0 + 3 * 86400)]], state)
    assert state is None
