"""The engine's timing hook: every detector's time, the person-risk accumulator's included."""

from __future__ import annotations

import itertools

from detectors.engine import Engine
from detectors.person_risk import PersonRisk
from detectors.signal import Indicator

from .helpers import T0, ev


class Always(Indicator):
    id = "always"
    summary = "A signal for every event (test)."

    def process(self, subject, events, state, clock):
        return {"seen": len(events)}, [self.signal(e, "seen", 5.0, "test") for e in events]


def test_observe_times_each_detector_and_the_accumulator_with_the_engines_timer():
    ticks = itertools.count()
    spent: dict[str, list[float]] = {}
    engine = Engine([Always(), PersonRisk()], lambda: T0, lambda d, s: spent.setdefault(d, []).append(s))
    engine.timer = lambda: float(next(ticks))  # each reading one "second" after the last
    state, alerts, failures = engine.run("pc-1001", [ev(ts=T0), ev(ts=T0 + 1)], None)
    assert not failures and not alerts
    assert set(state) == {"always", "person_risk"}  # the signals reached the accumulator
    assert spent == {"always": [1.0], "person_risk": [1.0]}


def test_without_observe_the_timer_is_not_read():
    engine = Engine([Always(), PersonRisk()], lambda: T0)
    engine.timer = lambda: (_ for _ in ()).throw(AssertionError("timer read"))
    state, _, failures = engine.run("pc-1001", [ev(ts=T0)], None)
    assert not failures and "person_risk" in state
