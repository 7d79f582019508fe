"""Every corpus case names every detector that must fire on it; an extra or a missing one fails."""

import pytest

from detectors.registry import CATALOG
from detectors.signal import Indicator

from .corpus_run import cases, run_case

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_exactly_the_named_detectors_fire(case):
    fired = sorted({a.detector for a in run_case(case)})
    assert fired == case.expect, case.description


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_batching_does_not_change_the_alerts(case):
    whole = {(a.id, a.count) for a in run_case(case)}
    assert {(a.id, a.count) for a in run_case(case, batch=1)} == whole
    assert {(a.id, a.count) for a in run_case(case, batch=2)} == whole


def test_corpus_names_only_known_detectors_and_covers_the_priorities():
    known = {c.id for c in CATALOG}
    named = {d for c in CASES for d in c.expect}
    assert named <= known
    indicators = {c.id for c in CATALOG if issubclass(c, Indicator)}  # signals only: test_indicators.py
    assert not named & indicators
    assert known - named - indicators == {"unusual_volume"}  # needs weeks of history: see test_unusual_volume
    assert any(not c.expect for c in CASES)  # a quiet case guards against noisy detectors
