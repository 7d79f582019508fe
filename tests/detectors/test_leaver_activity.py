from datetime import UTC, datetime

import pytest

from detectors.leaver_activity import LeaverActivity

from .helpers import T0, ev, example_reference, one_by_one, run

REF = example_reference()
LEFT = datetime(2026, 1, 16, tzinfo=UTC).timestamp()  # pc-1051's leave date is 2026-01-15


def det(**knobs):
    return LeaverActivity.configure(knobs, REF)


@pytest.mark.parametrize("user, ts, kind, fires", [
    ("pc-1051", LEFT - 1, "logon", False),  # the last second of the leave date
    ("pc-1051", LEFT, "logon", True),  # the first second after it
    ("pc-1051", LEFT + 86400 * 30, "record_access", True),
    ("pc-1001", T0, "logon", False),  # not a leaver
    ("nobody", T0, "logon", False),  # not in the directory
])
def test_activity_after_the_leave_date(user, ts, kind, fires):
    assert bool(run(det(), [[ev(user, ts, kind)]])[1]) is fires


def test_data_activity_scores_higher_and_explains_the_leave_date():
    (logon,) = run(det(), [[ev("pc-1051", LEFT, "logon")]])[1].values()
    (lookup,) = run(det(), [[ev("pc-1051", LEFT, "record_access")]])[1].values()
    assert (logon.score, lookup.score) == (70.0, 90.0) and lookup.severity == "critical"
    assert "leave date as 2026-01-15" in logon.explanation


def test_after_leave_s_tolerates_a_hand_over():
    d = det(after_leave_s=3600)
    assert not run(d, [[ev("pc-1051", LEFT + 3599, "logon")]])[1]
    assert run(d, [[ev("pc-1051", LEFT + 3600, "logon")]])[1]


def membership(user, ts, action, group="g-whatsapp-241"):
    return ev(user, ts, "membership", action=action, group_id=group)


def test_a_leaver_still_in_a_group_and_one_removed():
    stays = [membership("pc-1051", LEFT - 86400 * 400, "join"), ev("pc-1051", LEFT + 100, "message",
                                                                   group_id="g-whatsapp-241")]
    _, alerts = run(det(), [stays])
    keys = sorted(a.facts["key"] for a in alerts.values())
    assert keys == ["activity", "group:g-whatsapp-241"]
    removed = [membership("pc-1051", LEFT - 86400 * 400, "join"), membership("pc-1051", LEFT - 10, "leave"),
               ev("pc-1051", LEFT + 100, "logon")]
    _, alerts = run(det(), [removed])
    assert sorted(a.facts["key"] for a in alerts.values()) == ["activity"]


def test_roster_snapshot_reports_a_leaver_present_and_removal_is_not_an_offence():
    _, alerts = run(det(), [[membership("pc-1050", T0, "member")]])
    (a,) = alerts.values()
    assert a.title == "Leaver still in group g-whatsapp-241" and "2025-11-30" in a.explanation
    assert not run(det(), [[membership("pc-1050", T0, "leave")]])[1]


def test_out_of_order_join_and_leave_keep_the_latest_by_event_time():
    events = [membership("pc-1001", T0 + 100, "leave"), membership("pc-1001", T0, "join")]
    state, _ = run(det(), [events])
    assert state["g"] == {"g-whatsapp-241": [T0 + 100, 0]}  # the leave (later in event time) wins
    state, _ = run(det(), [[ev("pc-1001", T0 + 100 + 3601)]], state)
    assert state is None  # a leave is remembered for grace_s only
    state, _ = run(det(), [[membership("pc-1001", T0, "join")]])
    assert state["g"] == {"g-whatsapp-241": [T0, 1]}


def test_monitored_groups_and_max_groups_bound_the_state():
    d = det(monitored_groups=["g-1"])
    state, _ = run(d, [[membership("pc-1001", T0, "join", "g-2")]])
    assert state is None
    d = det(max_groups=3)
    state, _ = run(d, [[membership("pc-1001", T0 + i, "join", f"g-{i}") for i in range(10)]])
    assert sorted(state["g"]) == ["g-7", "g-8", "g-9"]


def test_folding_counts_and_batching():
    events = [ev("pc-1051", LEFT + i * 600, "logon") for i in range(5)] + [ev("pc-1051", LEFT + 86400, "logon")]
    _, whole = run(det(), [events])
    _, split = run(det(), one_by_one(events))
    assert sorted(a.count for a in whole.values()) == [1, 5]
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}


def test_a_timer_sweep_finds_a_silent_leaver_still_in_a_group():
    d = det()
    state, alerts = run(d, [[membership("pc-1051", LEFT - 86400 * 100, "join")]])
    assert not alerts and state["g"]
    before, got = d.process("pc-1051", [], state, lambda: LEFT - 1)
    assert got == [] and before == state
    after, got = d.process("pc-1051", [], state, lambda: LEFT + 7200)
    assert [a.facts["key"] for a in got] == ["group:g-whatsapp-241"]
    again, got2 = d.process("pc-1051", [], after, lambda: LEFT + 9000)
    assert [(a.id, a.count) for a in got2] == [(got[0].id, 2)]
