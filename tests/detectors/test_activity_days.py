"""detectors/activity_days.py: a person's activity per day by kind, counted absolutely, idempotent."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.activity_days import DAY_S, KIND_ORDER, DayCounts, count, iso_day, latest, pack_day, unpack_day

from .helpers import T0, ev

RETENTION_S = 730 * DAY_S
H = 3600.0
D0 = "2026-03-02"  # T0's day (09:00 UTC)
D1 = "2026-03-03"
D2 = "2026-03-04"
DM1 = "2026-03-01"


def run(batches, state=None, now=T0 + 10 * DAY_S, person="pc-1001"):
    """Feed batches through JSON as the pipeline keeps the state; returns (state, records, late)."""
    records, late = [], 0
    for batch in batches:
        out = count(person, state, [ev(person, T0 + off, kind) for off, kind in batch], now, RETENTION_S)
        state = orjson.loads(orjson.dumps(out.state)) if out.state is not None else None
        records += out.days
        late += out.late
    return state, records, late


# (case, batches of (offset from T0 in seconds, kind), expected latest counts per day, expected late)
CASES = [
    ("one event", [[(0, "logon")]], {D0: {"logon": 1}}, 0),
    ("kinds counted apart", [[(0, "logon"), (60, "export"), (120, "export")]], {D0: {"logon": 1, "export": 2}}, 0),
    ("later batch adds to the same day (absolute, not a delta)",
     [[(0, "logon")], [(H, "logon"), (2 * H, "share")]], {D0: {"logon": 2, "share": 1}}, 0),
    ("midnight UTC starts a new day", [[(14 * H, "logon"), (15 * H, "logon")]],
     {D0: {"logon": 1}, D1: {"logon": 1}}, 0),
    ("yesterday still counted after today began",
     [[(DAY_S, "logon")], [(0, "export")]], {D0: {"export": 1}, D1: {"logon": 1}}, 0),
    ("two days back is late: not counted, never overwrites",
     [[(0, "logon")], [(2 * DAY_S, "logon")], [(H, "export")]], {D0: {"logon": 1}, D2: {"logon": 1}}, 1),
    ("a gap of days: the older kept day is dropped, not its record",
     [[(0, "logon"), (DAY_S, "logon")], [(2 * DAY_S, "share")], [(DAY_S + H, "export")]],
     {D0: {"logon": 1}, D1: {"logon": 1, "export": 1}, D2: {"share": 1}}, 0),
    ("a day left behind in the same batch is still sent", [[(0, "logon"), (2 * DAY_S, "logon")]],
     {D0: {"logon": 1}, D2: {"logon": 1}}, 0),
    ("an event before the first day seen, within a day", [[(0, "logon"), (-10 * H, "share")]],
     {D0: {"logon": 1}, DM1: {"share": 1}}, 0),
]


@pytest.mark.parametrize(("batches", "expected", "late"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_counts(batches, expected, late):
    state, records, n_late = run(batches)
    got = {day: dict(r.counts) for (_, day), r in latest(records).items()}
    assert got == expected
    assert n_late == late
    assert len(state) <= 2  # current + previous day, never more


def test_records_are_absolute_so_a_resend_is_idempotent():
    state, first, _ = run([[(0, "logon"), (H, "logon")]])
    _, second, _ = run([[(2 * H, "export")]], state=state)
    assert [r.to_dict()["counts"] for r in second] == [{"export": 1, "logon": 2}]
    # a crash before the state was written: the same events against the old state, the same record
    _, again, _ = run([[(2 * H, "export")]], state=state)
    assert again == second
    kept = latest(first + second + again + first)  # resent and out-of-date copies change nothing
    assert [dict(r.counts) for r in kept.values()] == [{"logon": 2, "export": 1}]


def test_only_touched_days_are_sent():
    state, _, _ = run([[(0, "logon"), (DAY_S, "logon")]])
    _, records, _ = run([[(DAY_S + H, "share")]], state=state)
    assert [(r.day, dict(r.counts)) for r in records] == [(D1, {"logon": 1, "share": 1})]


def test_last_seen_is_the_days_newest_event():
    _, records, _ = run([[(3 * H, "logon"), (H, "logon")]])
    assert records[-1].last_seen == T0 + 3 * H


def test_days_past_the_window_are_forgotten():
    state, records, _ = run([[(0, "logon")]], now=T0 + RETENTION_S + 1)
    assert state is None and records == []


def test_the_state_holds_counts_only():
    state, _, _ = run([[(i * 60, "record_access") for i in range(500)]])
    assert len(orjson.dumps(state)) < 80


def test_record_round_trip_and_refusal():
    r = DayCounts("pc-1", D0, {"logon": 2}, T0)
    assert DayCounts.from_dict(orjson.loads(orjson.dumps(r.to_dict()))) == r
    for bad in ({"person": "", "day": D0, "counts": {}, "last_seen": 1},
                {"person": "p", "day": "yesterday", "counts": {}, "last_seen": 1},
                {"person": "p", "day": D0, "counts": {"logon": -1}, "last_seen": 1},
                {"person": "p", "day": D0, "counts": {"logon": 1.5}, "last_seen": 1},
                {"person": "p", "day": D0, "counts": {}, "last_seen": True}):
        with pytest.raises((ValueError, TypeError, KeyError)):
            DayCounts.from_dict(bad)


KINDS = ("logon", "export", "share", "record_access")
stream = st.lists(st.tuples(st.integers(0, 4 * 24), st.sampled_from(KINDS)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(stream, st.lists(st.integers(1, 60), max_size=8))
def test_batching_does_not_change_what_the_store_keeps(events, cuts):
    """However the stream is cut into batches, the store ends with the same counts per day; and when
    events arrive in time order (no late ones), those are exactly the events' counts per day."""
    timed = [(h * H, kind) for h, kind in events]
    whole = latest(run([timed])[1])
    batches, at = [], 0
    for n in cuts:
        batches.append(timed[at:at + n])
        at += n
    batches.append(timed[at:])
    cut = latest(run(batches)[1])
    assert {k: dict(v.counts) for k, v in cut.items()} == {k: dict(v.counts) for k, v in whole.items()}
    ordered = latest(run([sorted(timed)])[1])
    expected: dict[str, dict[str, int]] = {}
    for off, kind in timed:
        key = iso_day(int((T0 + off) // DAY_S))
        expected.setdefault(key, {})
        expected[key][kind] = expected[key].get(kind, 0) + 1
    assert {day: dict(r.counts) for (_, day), r in ordered.items()} == expected


# -- the stored form: [last_seen, counts by KIND_ORDER], and the form stored before it ---------------------

STATE_V1 = [[20514, 1772495999.0, {"logon": 1, "export": 2, "record_access": 1}],
            [20515, 1772532000.0, {"mail_forward": 1, "logon": 1}]]
"""As stored by commit 8d3268b ([day, last_seen, {kind: n}] per day) after :data:`V1_EVENTS`."""
V1_EVENTS = [(0, "logon"), (60, "export"), (120, "export"), (DAY_S - 9 * H - 1, "record_access"),
             (DAY_S, "mail_forward"), (DAY_S + H, "logon")]


def test_a_state_stored_before_counts_on_the_same():
    new, _, _ = run([V1_EVENTS])
    assert new == [[1772495999, [1, 0, 1, 0, 0, 2]], [1772532000, [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]]]
    assert len(orjson.dumps(new)) < len(orjson.dumps(STATE_V1)) * 0.7
    later = [[(DAY_S + 2 * H, "export"), (DAY_S + 3 * H, "share"), (H, "logon")]]
    from_old, old_records, _ = run(later, state=STATE_V1)
    from_new, new_records, _ = run(later, state=new)
    assert from_old == from_new
    assert [r.to_dict() for r in old_records] == [r.to_dict() for r in new_records]
    assert {r.day: dict(r.counts) for r in new_records} == {
        D0: {"logon": 2, "export": 2, "record_access": 1}, D1: {"mail_forward": 1, "logon": 1, "export": 1, "share": 1}}


@given(last=st.one_of(st.floats(0, 4e9), st.integers(0, 4 * 10**9).map(float)),
       kinds=st.dictionaries(st.sampled_from([*KIND_ORDER, "a_future_kind"]), st.integers(1, 10**9)))
def test_a_stored_day_reads_back_exactly(last, kinds):
    packed = orjson.loads(orjson.dumps(pack_day(last, kinds)))
    day, got_last, got = unpack_day(packed)
    assert (day, got_last, got) == (int(last // DAY_S), last, kinds)
    assert type(got_last) is float
