import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.impossible_travel import ImpossibleTravel, haversine_km, pack_points, unpack_points

from .helpers import T0, ev, one_by_one, run

NOTTINGHAM = (52.9548, -1.1581)
LONDON = (51.5074, -0.1278)  # about 176 km from Nottingham
LEICESTER = (52.6369, -1.1398)  # about 35 km
NEW_YORK = (40.7128, -74.0060)


def at(ts, place, user="pc-1001"):
    return ev(user, ts, "logon", lat=place[0], lon=place[1])


def points_of(state):
    """The kept points, packed (``q``) or as stored before (``p``)."""
    return unpack_points(state["q"]) if "q" in state else state["p"]


def test_haversine():
    assert haversine_km(*NOTTINGHAM, *LONDON) == pytest.approx(176, abs=1)
    assert haversine_km(*LONDON, *NEW_YORK) == pytest.approx(5570, abs=10)


@pytest.mark.parametrize("dt, place, fires", [
    (3600, LONDON, False),  # 176 km/h
    (702, LONDON, True),  # 900.3 km/h > 900
    (703, LONDON, False),  # 899.1 km/h: just under
    (60, LEICESTER, False),  # under min_distance_km
    (0, LONDON, True),  # at the same moment: treated as min_interval_s apart
    (6 * 3600, NEW_YORK, True),  # 928 km/h
    (7 * 3600, NEW_YORK, False),
])
def test_speed_and_distance_edges(dt, place, fires):
    _, alerts = run(ImpossibleTravel(), [[at(T0, NOTTINGHAM), at(T0 + dt, place)]])
    assert bool(alerts) is fires


def test_explanation_gives_distance_speed_and_limit():
    (a,) = run(ImpossibleTravel(), [[at(T0, NOTTINGHAM), at(T0 + 300, LONDON)]])[1].values()
    assert "176 km apart" in a.explanation and "900 km/h limit" in a.explanation
    assert a.facts["speed_kmh"] > 2000 and a.title == "Impossible travel: 176 km in 5 min"


def test_out_of_order_events_are_compared_with_their_neighbours_in_time():
    # London arrives late, between two Nottingham events 2 hours apart: both neighbours are 1 h away
    events = [at(T0, NOTTINGHAM), at(T0 + 7200, NOTTINGHAM), at(T0 + 600, LONDON)]
    assert run(ImpossibleTravel(), [events])[1]
    slow = [at(T0, NOTTINGHAM), at(T0 + 7200, NOTTINGHAM), at(T0 + 3600, LONDON)]
    assert not run(ImpossibleTravel(), [slow])[1]


def test_folding_counts_and_batch_invariance():
    events = [at(T0 + i * 300, NOTTINGHAM if i % 2 == 0 else LONDON) for i in range(6)]
    events.append(at(T0 + 3600 * 3, LONDON))
    events.append(at(T0 + 3600 * 3 + 60, NOTTINGHAM))
    _, whole = run(ImpossibleTravel(), [events])
    _, split = run(ImpossibleTravel(), one_by_one(events))
    assert sorted(a.count for a in whole.values()) == [1, 5]
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}


def test_state_is_bounded_and_expires():
    det = ImpossibleTravel()
    state, _ = run(det, [[at(T0 + i, NOTTINGHAM) for i in range(50)]])
    assert len(points_of(state)) == 8
    state, _ = run(det, [[ev("pc-1001", T0 + 86400 * 2, "logon")]], state)
    assert state is None
    assert run(det, [[ev("pc-1001", T0, "logon")]])[0] is None  # no location: nothing kept


def test_kept_locations_are_rounded_to_about_a_metre():
    precise = (52.954812345678, -1.158198765432)
    state, _ = run(ImpossibleTravel(), [[at(T0, precise)]])
    assert points_of(state) == [[T0, 52.95481, -1.1582]]


# -- the packed points (``q``) and the list stored before it (``p``) -----------------------------------

STATE_V1 = {"p": [[1772442007.5, 52.9548, -1.1581], [1772442900.0, 52.6369, -1.1398],
                  [1772446000.25, 52.9548, -1.1581], [1772451000.0, 51.5074, -0.1278]],
            "o": {}, "n": 1772451000.0}
"""As stored by commit 8d3268b after :func:`_v1_events` (``run(ImpossibleTravel(), [_v1_events()])``)."""


def _v1_events():
    return [at(T0 + 7.5, NOTTINGHAM), at(T0 + 900, LEICESTER), at(T0 + 4000.25, NOTTINGHAM), at(T0 + 9000, LONDON)]


def test_points_stored_as_a_list_of_lists_read_and_alert_the_same():
    new, alerts = run(ImpossibleTravel(), [_v1_events()])
    assert not alerts and "p" not in new
    assert new["q"] == [1772442007.5, 52.9548, -1.1581, 892.5, 52.6369, -1.1398, 3100.25, 52.9548, -1.1581,
                        4999.75, 51.5074, -0.1278]
    assert points_of(new) == STATE_V1["p"] and new["n"] == STATE_V1["n"]
    assert len(orjson.dumps(new)) < len(orjson.dumps(STATE_V1)) * 0.9
    later = [at(T0 + 9300, NOTTINGHAM), at(T0 + 3000, NEW_YORK), at(T0 + 86400 * 0.9, LONDON)]
    from_old, old_alerts = run(ImpossibleTravel(), [later], STATE_V1)
    from_new, new_alerts = run(ImpossibleTravel(), [later], new)
    assert sorted(a.title for a in new_alerts.values()) == [  # New York between, Nottingham after London
        "Impossible travel: 176 km in 5 min", "Impossible travel: 5,455 km in 17 min"]
    assert ({i: (a.count, a.score, a.title, a.explanation, a.facts) for i, a in old_alerts.items()}
            == {i: (a.count, a.score, a.title, a.explanation, a.facts) for i, a in new_alerts.items()})
    assert from_old == from_new and "q" in from_new  # the old state is packed when used


times = st.one_of(st.floats(-1e12, 1e12, allow_nan=False), st.integers(0, 4 * 10**9).map(float),
                  st.integers(0, 4 * 10**12).map(lambda ms: ms / 1000))


@given(st.lists(st.tuples(times, st.floats(-90, 90), st.floats(-180, 180)), max_size=8))
def test_packed_points_read_back_exactly(points):
    points = sorted([list(p) for p in points])
    flat = pack_points(points)
    if flat is None:  # gaps that would not add back up: the detector keeps the list as it is
        return
    got = unpack_points(orjson.loads(orjson.dumps(flat)))
    assert [[repr(x) for x in p] for p in got] == [[repr(float(x)) for x in p] for p in points]


@given(st.lists(st.integers(0, 80_000), min_size=1, max_size=8), st.integers(1_500_000_000, 2_000_000_000))
def test_whole_second_times_always_pack(gaps, start):
    points = []
    t = float(start)
    for gap in gaps:
        t += gap
        points.append([t, 52.9, -1.1])
    flat = pack_points(points)
    assert flat is not None and all(type(x) is int for x in flat[::3])
