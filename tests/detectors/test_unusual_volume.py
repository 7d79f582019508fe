from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.peers import PeerAggregator, bucket_of
from detectors.reference import Reference
from detectors.unusual_volume import (
    PLACES,
    UnusualVolume,
    baseline_lists,
    bucket_token,
    pack_baseline,
    read_token,
)

from .helpers import ev, example_reference, one_by_one, run

DAY = 86400
START = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday; GMT, so local hour = UTC hour


def office_days(days, per_hour=10, user="an-3002"):
    """Weekdays 09:00-17:00, ``per_hour`` events spread over each hour."""
    out = []
    for d in range(days):
        day = START + d * DAY
        if datetime.fromtimestamp(day, UTC).weekday() >= 5:
            continue
        for h in range(9, 17):
            out += [ev(user, day + h * 3600 + i * (3600 // per_hour), "record_access") for i in range(per_hour)]
    return out


def burst(day, hour, n, user="an-3002"):
    return [ev(user, START + day * DAY + hour * 3600 + i * 10, "record_access") for i in range(n)]


@pytest.fixture(scope="module")
def baseline():
    det = UnusualVolume()
    state, alerts = run(det, [office_days(21)])
    assert not alerts
    return state


def test_buckets():
    assert bucket_of(START + 9 * 3600) == 9  # Monday 09:00 GMT
    assert bucket_of(START + 5 * DAY + 3 * 3600) == 27  # Saturday 03:00
    assert bucket_of(datetime(2026, 7, 6, 8, tzinfo=UTC).timestamp()) == 9  # BST: 09:00 local


@pytest.mark.parametrize("n, fires", [(49, False), (50, True), (80, True)])
def test_volume_min_events_edge(baseline, n, fires):
    _, alerts = run(UnusualVolume(), [burst(22, 10, n)], baseline)  # Friday of week 4, 10:00
    keys = [a.facts["key"] for a in alerts.values()]
    assert ("volume" in keys) is fires
    if fires:
        (a,) = [a for a in alerts.values() if a.facts["key"] == "volume"]
        assert a.count == n - 49  # 15 x 10 and a Monday off:
        assert "baseline for that hour of the week is 9.4" in a.explanation


def test_work_at_unusual_hours(baseline):
    _, alerts = run(UnusualVolume(), [burst(22, 3, 9)], baseline)
    assert not alerts
    _, alerts = run(UnusualVolume(), [burst(22, 3, 10)], baseline)
    assert [a.facts["key"] for a in alerts.values()] == ["hours"]


def test_no_alert_during_warm_up():
    _, alerts = run(UnusualVolume(), [office_days(5) + burst(6, 3, 100)])
    assert not alerts


def test_a_busy_peer_group_vetoes_the_volume_alert(baseline):
    ref = example_reference()
    busy = {"group": "Intelligence/analyst", "mean": [100.0] * 48, "std": [10.0] * 48, "members": 12}
    quiet = {**busy, "mean": [10.0] * 48, "std": [3.0] * 48}
    for peer, fires in ((busy, False), (quiet, True)):
        det = UnusualVolume(reference=ref.apply("peer", peer))
        _, alerts = run(det, [burst(22, 10, 80)], baseline)
        assert ("volume" in [a.facts["key"] for a in alerts.values()]) is fires
    (a,) = alerts.values()
    assert "peer group (Intelligence/analyst) averages 10.0" in a.explanation


def test_batching_gives_the_same_alerts_and_state_is_small(baseline):
    events = burst(22, 10, 60) + burst(22, 3, 12)
    _, whole = run(UnusualVolume(), [events], baseline)
    _, split = run(UnusualVolume(), one_by_one(events), baseline)
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}
    assert len(orjson.dumps(baseline)) < 1000


def test_means_and_variances_are_kept_to_a_few_decimals():
    # irregular hours, so the running means are not round numbers
    events = [e for d in range(16) for e in burst(d, 9 + d % 5, 3 + (d * 7) % 11)]
    state, _ = run(UnusualVolume(), [events])
    _, means, variances = baseline_lists(state["b"])
    assert any(m != round(m) for m in means)  # the baseline did move by fractions
    assert all(x == round(x, PLACES) for x in means + variances)


def test_out_of_order_within_grace_counts_after_it_does_not(baseline):
    # 60 events at 10:xx arriving after one at 11:50 (within grace) still count for 10:00
    late = [ev("an-3002", START + 22 * DAY + 11 * 3600 + 3000, "record_access")] + burst(22, 10, 60)
    assert run(UnusualVolume(), [late], baseline)[1]
    # after 12:00 + grace, the 10:00 hour is closed: the late burst is not counted
    too_late = [ev("an-3002", START + 22 * DAY + 12 * 3600, "record_access")] + burst(22, 10, 60)
    assert not run(UnusualVolume(), [too_late], baseline)[1]


def test_forgotten_after_a_long_absence(baseline):
    state, alerts = run(UnusualVolume(), [burst(22 + 91, 3, 100)], baseline)
    assert not alerts and state["b"]["f"] == START + (22 + 91) * DAY + 3 * 3600  # warm-up again


def test_peer_aggregator_publishes_a_peer_record_the_reference_accepts():
    agg = PeerAggregator()
    events = office_days(3, per_hour=4, user="a") + office_days(3, per_hour=2, user="b")
    events.sort(key=lambda e: e.ts)
    state, record = agg.process("Intelligence/analyst", events, members=4, state=None)
    assert record is not None and len(record["mean"]) == 48
    assert record["mean"][10] > 0 and record["mean"][3] == 0
    ref = Reference().apply("peer", record)
    assert ref.peers["Intelligence/analyst"].members == 4
    assert len(orjson.dumps(state)) < 5000


def test_a_baseline_older_than_the_retention_window_is_reset(baseline):
    """Explicit expiry: nothing derived from events older than the window survives in the baseline."""

    def active_until(ts):  # the user kept working right up to ts (so the idle rule does not apply)
        st = orjson.loads(orjson.dumps(baseline))
        st["b"]["l"] = ts - DAY
        return st

    first = baseline["b"]["f"]
    for age_days, reset in ((729, False), (731, True)):
        at = first + age_days * DAY
        state, _ = run(UnusualVolume(), [[ev("an-3002", at + i * 10, "record_access") for i in range(3)]],
                       active_until(at))
        assert (state["b"]["f"] == first) is not reset, age_days
        if reset:
            assert state["b"]["f"] == at and baseline_lists(state["b"])[0] == [0] * 48


@pytest.mark.parametrize("peer_mean, fires", [(0.0, True), (0.029, True), (0.03, False), (0.5, False)])
def test_unusual_hours_not_alerted_when_the_peer_group_works_them(baseline, peer_mean, fires):
    ref = Reference().apply("staff", {"user_id": "an-3002", "team": "Intelligence", "role": "analyst"}).apply(
        "peer", {"group": "Intelligence/analyst", "mean": [peer_mean] * 48, "std": [0.1] * 48})
    _, alerts = run(UnusualVolume(reference=ref), [burst(22, 3, 10)], baseline)
    assert bool(alerts) is fires
    _, alerts = run(UnusualVolume.configure({"off_hours_peer_usual_mean": 0}, ref), [burst(22, 3, 10)], baseline)
    assert alerts  # 0: peers not asked


@pytest.mark.parametrize("busy, spread, fires", [
    (None, 1, True),        # the peers never work near that hour
    (3, 0, False),          # the bucket itself (Tuesday 03:00 is weekday bucket 3)
    (2, 0, True), (2, 1, False), (4, 1, False),   # an hour either side counts only with the spread
    (27, 0, True), (27, 1, False),                # the same hour at the weekend (a rota round the week)
    (26, 1, False), (5, 1, True), (29, 1, True),  # two hours away: outside a spread of 1
    (5, 2, False),
])
def test_unusual_hours_peer_spread_counts_nearby_hours_of_either_kind_of_day(baseline, busy, spread, fires):
    """A small group's few weeks of nights leave gaps: with off_hours_peer_spread_h the peers "work the
    hour" when they work the hours either side, on weekdays or at weekends."""
    mean = [0.0] * 48
    if busy is not None:
        mean[busy] = 0.2
    ref = Reference().apply("staff", {"user_id": "an-3002", "team": "Intelligence", "role": "analyst"}).apply(
        "peer", {"group": "Intelligence/analyst", "mean": mean, "std": [0.1] * 48})
    det = UnusualVolume.configure({"off_hours_peer_spread_h": spread}, ref)
    _, alerts = run(det, [burst(22, 3, 10)], baseline)
    assert bool(alerts) is fires


# -- the packed baseline (``z``) and the three lists stored before it ----------------------------------

STATE_V1 = Path(__file__).with_name("unusual_volume_state_v1.json")
"""The state stored by unusual_volume as of commit 8d3268b (means, variances and counts as three lists
``m``, ``v``, ``k``) after :func:`_history`: ``run(UnusualVolume(), [_history()])``, orjson."""


def _history():
    """Three weeks of office hours, then two days of irregular hours (means that are not round)."""
    return office_days(21) + [e for d in range(21, 23) for e in burst(d, 9 + d % 5, 3 + (d * 7) % 11)]


def test_a_baseline_stored_as_three_lists_reads_and_alerts_the_same():
    old = orjson.loads(STATE_V1.read_bytes())
    assert set(old["b"]) == {"m", "v", "k", "f", "l", "c", "h"}  # the earlier form, literally
    new, alerts = run(UnusualVolume(), [_history()])
    assert not alerts and "z" in new["b"] and type(new["b"]["k"]) is str and not {"m", "v"} & set(new["b"])
    assert baseline_lists(new["b"]) == baseline_lists(old["b"])  # the same numbers, exactly
    assert {k: v for k, v in new["b"].items() if k not in ("z", "k")} == {
        k: v for k, v in old["b"].items() if k not in ("m", "v", "k")}
    assert len(orjson.dumps(new)) < len(STATE_V1.read_bytes()) / 2
    later = burst(23, 3, 12) + burst(23, 10, 60)  # Wednesday: a night hour and a busy 10:00
    from_old, old_alerts = run(UnusualVolume(), [later], old)
    from_new, new_alerts = run(UnusualVolume(), [later], new)
    assert sorted(a.facts["key"] for a in new_alerts.values()) == ["hours", "volume"]
    assert ({i: (a.count, a.score, a.title, a.explanation, a.facts) for i, a in old_alerts.items()}
            == {i: (a.count, a.score, a.title, a.explanation, a.facts) for i, a in new_alerts.items()})
    assert from_old == from_new  # the old state is packed when used


def _same(a, b):
    return repr(a) == repr(b)  # nan == nan, -0.0 != 0.0


fixed_point = st.integers(0, 10**15).map(lambda n: round(n / 10**PLACES, PLACES))


counts = st.one_of(st.integers(0, 10_000), st.sampled_from([0, 19, 20, 42, 43]))


@given(st.lists(st.tuples(counts, st.one_of(fixed_point, st.floats()), st.one_of(fixed_point, st.floats())),
                min_size=48, max_size=48))
def test_packed_buckets_read_back_exactly(buckets):
    ks, ms, vs = (list(x) for x in zip(*buckets, strict=True))
    packed = pack_baseline(ks, ms, vs)
    assert orjson.loads(orjson.dumps(packed)) == packed
    assert not any(c in text for text in packed.values() for c in '"\\')
    got = baseline_lists(packed)
    assert got[0] == ks
    assert all(_same(a, b) for a, b in zip(got[1] + got[2], ms + vs, strict=True))
    for b in (0, 17, 47):  # one bucket alone
        m, v = read_token(packed["z"].split(",")[b])
        assert _same(m, ms[b]) and _same(v, vs[b])


@given(fixed_point, fixed_point)
def test_a_bucket_of_fixed_point_values_is_packed_as_base_64_digits(m, v):
    token = bucket_token(m, v)
    assert ":" not in token  # never the repr fallback for values the detector keeps
    assert len(token) <= 9 * 2 and len(token) % 2 == 0 and (token == "") is (m == v == 0)



def as_stored_before(state):
    """A packed state written back in the form stored before ``z`` (three lists, times for hours)."""
    b = orjson.loads(orjson.dumps(state["b"]))
    ks, ms, vs = baseline_lists(b)
    for key in ("z", "k"):
        b.pop(key)
    b.update(m=ms, v=vs, k=ks)
    return {**state, "b": b}


def meaning(state):
    """What a state says, whichever form it is stored in."""
    if state is None:
        return None
    b = state["b"]
    return {**state, "b": (baseline_lists(b), b["c"], b["h"], b["f"], b["l"])}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 27), st.integers(0, 23), st.integers(1, 14)), min_size=1, max_size=40),
       st.integers(0, 40))
def test_a_state_in_the_earlier_form_continues_exactly_as_the_packed_one(bursts, cut):
    """Behaviour, not only bytes: random weeks of bursts cut in two; the second half run from the state as
    packed and from the same state in the earlier form gives the same alerts and the same state."""
    det = UnusualVolume.configure({"warmup_days": 2, "min_events": 6, "off_hours_min_events": 3,
                                   "z_threshold": 1.0})
    events = sorted((e for day, hour, n in bursts for e in burst(day, hour, n)), key=lambda e: e.ts)
    cut = min(cut, len(events))
    state, _ = run(det, [events[:cut]]) if cut else (None, {})
    rest = [events[cut:]]
    packed, packed_alerts = run(det, rest, state)
    before, before_alerts = run(det, rest, as_stored_before(state) if state else None)
    assert packed == before or (not events[cut:] and meaning(packed) == meaning(before))
    if events[cut:]:
        assert "z" in packed["b"] and packed == before  # the earlier form is packed when used
    assert ({i: (a.count, a.score, a.title, a.explanation, a.facts) for i, a in packed_alerts.items()}
            == {i: (a.count, a.score, a.title, a.explanation, a.facts) for i, a in before_alerts.items()})
