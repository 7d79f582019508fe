import pytest

from detectors import personal_data
from detectors.unsanctioned_messaging import UnsanctionedMessaging

from .helpers import T0, ev, example_reference, one_by_one, run

REF = example_reference()
PHOTO = [{"type": "image/jpeg", "name": "IMG_0042.jpg"}]


def msg(ts=T0, content="on my way", app="com.whatsapp", policy="managed-phone", **fields):
    return ev("pc-1001", ts, "message", app_id=app, policy_set=policy, content=content, **fields)


def det(**knobs):
    return UnsanctionedMessaging.configure(knobs, REF)


@pytest.mark.parametrize("fields, fires", [
    ({}, True),
    ({"app": "org.telegram.messenger"}, True),
    ({"app": "uk.police.pronto"}, False),  # sanctioned on managed phones
    ({"policy": "byod"}, False),  # anything goes on a personal device
    ({"policy": "unregistered-set"}, False),  # not in the register: not judged
    ({"policy": None}, False),  # no policy set and no default
    ({"app": None}, False),
    ({"kind": "logon"}, False),
])
def test_matches(fields, fires):
    kind = fields.pop("kind", "message")
    e = msg(**fields)
    e.kind = kind
    assert bool(run(det(), [[e]])[1]) is fires


def test_default_policy_set_applies_to_events_without_one():
    assert run(det(default_policy_set="managed-phone"), [[msg(policy=None)]])[1]


@pytest.mark.parametrize("text, kinds", [
    ("stopped AB12 CDE on the A52", ("vehicle_registration",)),
    ("her number is 07700 900123", ("phone_number",)),
    ("call +44 115 496 0123", ("phone_number",)),
    ("DOB 04/07/1988", ("date_of_birth",)),
    ("lives at NG7 2RD", ("postcode",)),
    ("NINO JG 10 37 73 A", ("national_insurance_number",)),
    ("mail j.smith@example.com", ("email_address",)),
    ("see you at 10:30, bring 2 coffees", ()),
    ("ref 20240115 case 4471", ()),
])
def test_personal_data_kinds(text, kinds):
    assert personal_data.kinds_in(text) == kinds


def test_score_grows_with_personal_data_and_group_images_and_text_names_kinds_only():
    plain = next(iter(run(det(), [[msg()]])[1].values()))
    secret = "Jane Roe, DOB 04/07/1988, NG7 2RD, reg AB12 CDE"
    rich = next(iter(run(det(), [[msg(content=secret, group_id="g-shift", media=PHOTO)]])[1].values()))
    assert plain.score == 35.0 and plain.severity == "low"
    assert rich.score == 35 + 3 * 15 + 20 and rich.severity == "critical"
    text = rich.title + rich.explanation
    for fragment in ("Jane", "Roe", "1988", "2RD", "AB12", "IMG_0042"):
        assert fragment not in text
    assert "a vehicle registration, a date of birth and a postcode" in rich.explanation
    assert "an image posted to a group" in rich.explanation
    assert "No personal data was recognised" in plain.explanation


def test_image_outside_a_group_is_not_scored_up():
    a = next(iter(run(det(), [[msg(media=PHOTO)]])[1].values()))
    assert a.score == 35.0


def test_scan_chars_bounds_what_is_scanned():
    late = "x" * 100 + " NG7 2RD"
    assert next(iter(run(det(scan_chars=50), [[msg(content=late)]])[1].values())).score == 35.0


def test_one_alert_per_app_per_window_accumulating_kinds():
    events = [msg(T0, "AB12 CDE"), msg(T0 + 60, "NG7 2RD"), msg(T0 + 120, app="org.telegram.messenger"),
              msg(T0 + 86399), msg(T0 + 86400)]
    _, whole = run(det(), [events])
    _, split = run(det(), one_by_one(events))
    assert sorted(a.count for a in whole.values()) == [1, 1, 3]
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}
    (three,) = [a for a in whole.values() if a.count == 3]
    assert "a vehicle registration and a postcode" in three.explanation
    assert three.facts["tags"] == ["postcode", "vehicle_registration"]


def test_under_alert_min_score_a_bare_message_is_a_signal_and_personal_data_still_alerts():
    from .helpers import run_all

    d = det(alert_min_score=40.0)
    _, alerts, signals = run_all(d, [[msg()]])
    assert not alerts and [(s.reason, s.weight) for s in signals] == [("unsanctioned_app", 6.0)]
    _, alerts, signals = run_all(d, [[msg(content="DOB 01/02/1980 NG7 2RD")]])
    assert len(alerts) == 1 and not signals
    _, alerts, signals = run_all(det(alert_min_score=40.0, signal_weight=0.0), [[msg()]])
    assert not alerts and not signals
