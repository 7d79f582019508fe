import pytest

from detectors.impossible_travel import ImpossibleTravel, haversine_km

from .helpers import T0, ev, one_by_one, run

NOTTINGHAM = (52.9548, -1.1581)
LONDON = (51.5074, -0.1278)  # about 176 km from Nottingham
LEICESTER = (52.6369, -1.1398)  # about 35 km
NEW_YORK = (40.7128, -74.0060)


def at(ts, place, user="pc-1001"):
    return ev(user, ts, "logon", lat=place[0], lon=place[1])


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
    assert len(state["p"]) == 8
    state, _ = run(det, [[ev("pc-1001", T0 + 86400 * 2, "logon")]], state)
    assert state is None
    assert run(det, [[ev("pc-1001", T0, "logon")]])[0] is None  # no location: nothing kept


def test_kept_locations_are_rounded_to_about_a_metre():
    precise = (52.954812345678, -1.158198765432)
    state, _ = run(ImpossibleTravel(), [[at(T0, precise)]])
    assert state["p"] == [[T0, 52.95481, -1.1582]]
