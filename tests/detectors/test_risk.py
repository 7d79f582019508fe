import pytest

from detectors.alert import Alert
from detectors.risk import RiskConfig, contribution, risk_by_subject, risk_score

from .helpers import T0

DAY = 86400


def alert(score=80.0, severity="high", last_seen=T0, count=1, subject="u"):
    return Alert(id=f"a{score}{last_seen}{count}", detector="d", detector_version=1, severity=severity,
                 score=score, subject=subject, title="t", explanation="e", ts=last_seen,
                 first_seen=last_seen, last_seen=last_seen, count=count)


def test_empty_is_zero_and_more_alerts_mean_more_risk_below_100():
    assert risk_score([], T0) == 0
    one = risk_score([alert()], T0)
    three = risk_score([alert(), alert(70, last_seen=T0 - 1), alert(90, "critical", T0 - 2)], T0)
    assert 0 < one < three < 100


def test_half_life():
    assert contribution(alert(last_seen=T0 - 14 * DAY), T0) == pytest.approx(contribution(alert(), T0) / 2)
    assert risk_score([alert(last_seen=T0 - 14 * DAY)], T0) < risk_score([alert()], T0)
    cfg = RiskConfig.from_mapping({"half_life_days": 1})
    assert risk_score([alert(last_seen=T0 - 30 * DAY)], T0, cfg) == 0


def test_count_and_severity_weigh_in():
    assert risk_score([alert(count=8)], T0) > risk_score([alert()], T0)
    assert risk_score([alert(severity="critical")], T0) > risk_score([alert(severity="medium")], T0)


def test_by_subject_and_config_errors():
    got = risk_by_subject([alert(subject="a"), alert(subject="b", last_seen=T0 - 60 * DAY)], T0)
    assert got["a"] > got["b"]
    with pytest.raises(ValueError):
        RiskConfig.from_mapping({"half_life": 3})
    with pytest.raises(ValueError):
        RiskConfig.from_mapping({"scale": 0})
