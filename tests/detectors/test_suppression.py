from dataclasses import dataclass

import pytest

from detectors.base import DetectorConfig
from detectors.suppression import Hit, RuleDetector, duration, severity_for

from .helpers import T0, ev, one_by_one, run


@dataclass(frozen=True)
class EveryConfig(DetectorConfig):
    suppress_s: int = 1000
    grace_s: int = 100


class Every(RuleDetector):
    """Hits on every event, keyed by its action."""

    id = "every"
    summary = "test"
    Config = EveryConfig

    def hits(self, subject, event, state, ref, newest):
        yield Hit(key=event.action or "-", event=event, score=50.0 + (event.record_count or 0),
                  title="t", explanation="e.")


def stream(*offsets, action="a"):
    return [ev("u", T0 + o, action=action, id=f"x{o}") for o in offsets]


@pytest.mark.parametrize("offsets, expected", [
    ((0,), [1]),
    ((0, 100, 999), [3]),  # the whole window folds into one alert
    ((0, 999, 1000), [2, 1]),  # the window's end opens a new alert
    ((0, 1000, 1999, 2000), [1, 2, 1]),
    ((500, 0), [2]),  # out of order within the window: folded, first_seen moves back
    ((1000, 0), [1, 1]),  # a hit a whole window before the open one is its own alert
])
def test_counts_per_window(offsets, expected):
    _, alerts = run(Every(), [stream(*offsets)])
    assert sorted(a.count for a in alerts.values()) == sorted(expected)


def test_fold_keeps_first_and_last_seen_peak_score_and_explains_the_count():
    events = stream(500, 0) + [ev("u", T0 + 10, action="a", record_count=30, id="big")]
    _, alerts = run(Every(), [events])
    (a,) = alerts.values()
    assert (a.first_seen, a.last_seen, a.count, a.score) == (T0, T0 + 500, 3, 80.0)
    assert a.severity == "high"
    assert "3 matching events" in a.explanation and "one alert per 16 minutes" not in a.explanation
    assert a.evidence_event_ids == ("x500", "x0", "big")


def test_keys_fold_separately_and_ids_are_stable():
    _, one = run(Every(), [stream(0, 1) + stream(2, action="b")])
    _, two = run(Every(), one_by_one(stream(0, 1) + stream(2, action="b")))
    assert sorted(a.count for a in one.values()) == [1, 2]
    assert {a.id: a.count for a in one.values()} == {a.id: a.count for a in two.values()}


def test_state_expires_when_no_window_can_take_more_hits():
    det = Every()
    state, _ = run(det, [stream(0)])
    assert state["o"]["a"]["n"] == 1
    state, _ = run(det, [[ev("u", T0 + 1099, action="b", id="late")]], state)
    assert "a" in state["o"]  # 1099 < 0 + suppress 1000 + grace 100: still open
    state, _ = run(det, [[ev("u", T0 + 2300, action="b", id="later")]], state)
    assert "a" not in state["o"]
    state, _ = det.process("u", [], state, lambda: T0)
    assert state is not None  # b still open
    assert run(det, [[ev("u", T0 + 9999, action="c")]], state)[0]["o"].keys() == {"c"}


def test_a_late_hit_after_its_window_closed_is_a_new_alert_however_batched():
    events = stream(0) + [ev("u", T0 + 1200, action="b")] + stream(10)
    _, whole = run(Every(), [events])
    _, split = run(Every(), one_by_one(events))
    assert sorted(a.count for a in whole.values()) == [1, 1, 1]
    assert whole.keys() == split.keys()


def test_open_windows_are_capped():
    det = Every()
    events = [ev("u", T0 + i, action=f"k{i}") for i in range(100)]
    state, alerts = run(det, [events])
    assert len(state["o"]) == 64 and len(alerts) == 100
    assert "k0" not in state["o"] and "k99" in state["o"]


def test_words():
    assert duration(86400) == "1 day" and duration(7200) == "2 hours" and duration(61) == "61 seconds"
    assert [severity_for(s) for s in (10, 40, 65, 85)] == ["low", "medium", "high", "critical"]
