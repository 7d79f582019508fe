"""person_risk: the decayed sum, context multipliers, episodes (one upserted alert), direct alerts
counted once, and batching invariance through the Engine (the path the worker and replay use)."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.alert import Alert
from detectors.engine import Engine
from detectors.person_risk import PersonRisk
from detectors.registry import CATALOG
from detectors.signal import DAY, Signal

from .helpers import T0, cut, ev, example_reference, roundtrip

REF = example_reference()
H = 3600.0


def sig(ts, weight, reason="x", eid=None):
    return Signal("off_hours", reason, ts, eid or f"e{ts}", weight, "note")


def feed(det, steps, state=None, user="pc-1001"):
    """steps: (signals, alerts, top) per call; returns final state and latest alert per id."""
    out: dict[str, Alert] = {}
    for signals, alerts, top in steps:
        state, got = det.accumulate(user, signals, alerts, roundtrip(state), lambda t=top: t, top)
        for a in got:
            out[a.id] = a
    return roundtrip(state), out


def test_signals_settle_an_hour_after_the_hour_and_cross_the_threshold_once():
    det = PersonRisk.configure({"threshold": 60.0}, REF)
    state, alerts = feed(det, [([sig(T0 + 60, 30), sig(T0 + 120, 20)], [], T0 + 120)])
    assert alerts == {} and state["p"]  # pending: the hour has not closed + grace
    state, alerts = feed(det, [([sig(T0 + 3 * H, 15)], [], T0 + 3 * H)], state)
    assert alerts == {} and state["s"] == 50.0  # 09:00 hour settled at 11:00; 50 < 60
    state, alerts = feed(det, [([], [], T0 + 5 * H)], state)  # 12:00 hour settles: 50 decayed 3 h + 15
    (a,) = alerts.values()
    expected = 50 * 0.5 ** (3 * H / (7 * DAY)) + 15
    assert math.isclose(a.facts["risk"], round(expected, 4)) and a.count == 3
    assert a.first_seen == T0 + 3 * H and set(a.evidence_event_ids) == {f"e{T0 + 120}", f"e{T0 + 3 * H}"}  # 2 kept
    # more signals update the same alert (same id, count grows); nothing new -> no alert
    state, again = feed(det, [([sig(T0 + 6 * H, 5)], [], T0 + 6 * H), ([], [], T0 + 9 * H)], state)
    assert list(again) == [a.id] and again[a.id].count == 4


def test_decay_closes_the_episode_and_a_new_crossing_opens_another():
    det = PersonRisk.configure({}, REF)
    state, first = feed(det, [([sig(T0, 70)], [], T0), ([], [], T0 + 3 * H)])
    # two half-lives later 70 -> 17.5 < 30 (close_ratio x threshold): the episode is over
    state, second = feed(det, [([sig(T0 + 14 * DAY, 50)], [], T0 + 14 * DAY), ([], [], T0 + 14 * DAY + 3 * H)], state)
    assert len(first) == 1 and len(second) == 1 and set(first) != set(second)


def test_context_multipliers_from_the_staff_directory():
    ref = REF.apply("staff", {"user_id": "pc-1001", "notice_date": "2026-03-01", "privileged": True})
    det = PersonRisk.configure({}, ref)
    state, alerts = feed(det, [([sig(T0, 25)], [], T0), ([], [], T0 + 3 * H)])
    (a,) = alerts.values()  # 25 x 2 (departing) x 1.5 (privileged) = 75
    assert a.facts["risk"] == 75.0 and a.facts["multiplier"] == 3.0
    _, none = feed(PersonRisk.configure({}, REF), [([sig(T0, 25)], [], T0), ([], [], T0 + 3 * H)])
    assert none == {}


def test_a_direct_alert_counts_its_peak_each_rise_in_its_own_hour():
    det = PersonRisk.configure({}, REF)

    def alert(count, score, last):
        return Alert(
            id="A1",
            detector="bulk_export",
            detector_version=1,
            severity="high",
            score=score,
            subject="pc-1001",
            title="t",
            explanation="x",
            ts=last,
            first_seen=T0,
            last_seen=last,
            evidence_event_ids=("b1",),
            count=count,
        )

    state, _ = feed(
        det,
        [
            ([], [alert(1, 70, T0)], T0),
            ([], [alert(2, 80, T0 + 60)], T0 + 60),
            ([], [], T0 + 3 * H),
            ([], [alert(3, 90, T0 + 4 * H)], T0 + 4 * H),
            ([], [], T0 + 8 * H),
        ],
    )
    # an alert listing no hits stands for one at its ts and score: 0.5 x 70, then 0.5 x 10 more in the
    # first hour (40), and 0.5 x 10 more in the fifth; the first decayed to the fifth hour's end
    rec = state["c"]["bulk_export:alert"]
    assert math.isclose(rec[0], 40.0 * math.pow(0.5, 4 * H / (7 * DAY)) + 5.0, rel_tol=1e-6)
    assert rec[1] == 3  # three rises of the peak
    again, _ = feed(det, [([], [alert(3, 90, T0 + 4 * H)], T0 + 9 * H), ([], [], T0 + 12 * H)], state)
    assert again["c"]["bulk_export:alert"][1] == 3  # a version that does not raise the peak adds nothing


def test_a_state_stored_before_still_counts_its_uncounted_direct_alert():
    """States written before alerts listed their hits keep a direct alert not yet counted under
    ``a`` ([first seen, peak, detector, counted?, ids, note]): it is counted when its hour settles."""
    det = PersonRisk.configure({}, REF)
    old = {"a": {"A1": [T0, 80.0, "bulk_export", 0, ["b1"], "t"]}, "n": T0}
    state, _ = feed(det, [([], [], T0 + 3 * H)], old)
    assert state["c"]["bulk_export:alert"][:3] == [40.0, 1, ["b1"]]


def test_a_rule_alert_counts_each_rise_of_its_peak_at_the_hour_of_the_hit():
    """A rule detector's alert lists its hits: each hit that raises the alert's peak adds
    alert_factor x the rise in that hit's hour, so the alert counts alert_factor x its peak in all,
    and one version holding all hits counts the same as three versions of one hit each."""
    det = PersonRisk.configure({}, REF)

    def version(count, score, hits):
        return Alert(id="T1", detector="third_party_transfer", detector_version=1, severity="high", score=score,
                     subject="pc-1001", title="t", explanation="x", ts=hits[-1][0], first_seen=T0,
                     last_seen=hits[-1][0], evidence_event_ids=tuple(h[2] for h in hits), count=count, hits=hits)

    hits = ((T0, 60.0, "s1"), (T0 + 2 * H, 50.0, "s2"), (T0 + 5 * H, 80.0, "s3"))
    one, _ = feed(det, [([], [version(3, 80.0, hits)], T0 + 5 * H), ([], [], T0 + 8 * H)])
    three, _ = feed(det, [([], [version(1, 60.0, hits[:1])], T0), ([], [version(2, 60.0, hits[:2])], T0 + 2 * H),
                          ([], [version(3, 80.0, hits)], T0 + 5 * H), ([], [], T0 + 8 * H)])
    assert one == three
    rec = one["c"]["third_party_transfer:alert"]
    assert rec[1] == 2  # two rises: 0 -> 60 at T0, 60 -> 80 at T0 + 5 h (the 50 adds nothing)
    # 0.5 x 60 decayed from the first hour's end, plus 0.5 x 20 from the sixth's, to the sixth hour's end
    decay = math.pow(0.5, 5 * H / (7 * DAY))
    assert math.isclose(rec[0], 30.0 * decay + 10.0, rel_tol=1e-3)
    assert rec[2] == ["s1", "s3"]


def test_a_direct_alert_note_shows_its_title_with_masked_values_as_tokens():
    """A direct alert's title may hold a placeholder for a masked value ({recipient_party}); the
    contribution's note shows the masked token, never the value nor the raw placeholder."""
    det = PersonRisk.configure({}, REF)
    alert = Alert(id="A2", detector="third_party_transfer", detector_version=1, severity="high", score=70.0,
                  subject="pc-1001", title="Personal data to an unapproved third party: pnc to {recipient_party}",
                  explanation="x", ts=T0, first_seen=T0, last_seen=T0, evidence_event_ids=("t1",), count=1,
                  facts={"masked": {"recipient_party": "Jane Doe Ltd"}})
    state, _ = feed(det, [([], [alert], T0), ([], [], T0 + 3 * H)])
    note = state["c"]["third_party_transfer:alert"][4]
    assert note == "alert: Personal data to an unapproved third party: pnc to [m"  # cut at 60 characters
    assert "Jane" not in str(state) and "{recipient_party}" not in str(state)


def test_state_is_bounded_and_disappears_once_decayed():
    det = PersonRisk.configure({}, REF)
    many = [Signal(f"i{k}", "r", T0 + k, f"e{k}", 1.0, "n") for k in range(100)]
    state, _ = feed(det, [(many, [], T0 + 100), ([], [], T0 + 3 * H)])
    assert len(state["c"]) <= 16 and "p" not in state
    state, _ = feed(det, [([], [], T0 + 200 * DAY)], state)
    assert state is None


ENGINE_DETECTORS = [cls.configure({}, REF) for cls in CATALOG]
KINDS = ["logon", "removable_media", "web_upload", "message", "other", "record_access", "export", "share"]


@st.composite
def stream(draw):
    n = draw(st.integers(1, 40))
    base = T0 + 5 * DAY + 17 * H  # a Saturday night
    times = sorted(draw(st.lists(st.floats(0, 2 * DAY), min_size=n, max_size=n)))
    out = []
    for i, t in enumerate(times):
        jitter = draw(st.floats(0, 1800))  # some arrive late (within grace)
        out.append(
            ev(
                "st-3001",
                base + max(0.0, t - jitter),
                draw(st.sampled_from(KINDS)),
                id=f"p{i}",
                file_name=draw(st.sampled_from([None, "tool.exe", "a.zip", "a.docx"])),
                url_domain=draw(st.sampled_from([None, "pastebin.com", "www.indeed.co.uk"])),
                email_to=draw(st.sampled_from([(), ("me@gmail.com",)])),
                host_id=draw(st.sampled_from([None, "LT-1", "LT-2"])),
                # shares of a register dataset to an unapproved domain: third_party_transfer's alerts
                # (their score rises with the records sent) feed person_risk as direct alerts
                dataset=draw(st.sampled_from([None, "firearm-certificates"])),
                sensitivity=draw(st.sampled_from([None, "high", "special"])),
                record_count=draw(st.sampled_from([None, 1, 40, 5000])),
                destination_domain=draw(st.sampled_from([None, "example.org"])),
            )
        )
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=stream(), cuts=st.lists(st.integers(1, 40), max_size=6))
def test_engine_person_alerts_do_not_depend_on_batching(events, cuts):
    def run(batches):
        engine = Engine(ENGINE_DETECTORS, clock=lambda: T0)
        state, alerts = None, {}
        for batch in batches:
            state, got, failures = engine.run("st-3001", batch, roundtrip(state))
            assert not failures
            for a in got:
                if a.detector == "person_risk":  # the whole alert: points, contributions, evidence
                    alerts[a.id] = (a.count, a.score, a.first_seen, a.last_seen, a.evidence_event_ids,
                                    round(a.facts["risk"], 3),
                                    [(c["indicator"], c["reason"], c["points"], c["signals"])
                                     for c in a.facts["contributions"]])
                else:
                    alerts[a.id] = (a.count, a.score)
        return alerts

    whole = run([events])
    assert run(cut(events, cuts)) == whole
    assert run([[e] for e in events]) == whole
