import pytest

from detectors.need_to_know import NeedToKnow

from .helpers import T0, ev, example_reference, one_by_one, run

REF = example_reference()


def det(**knobs):
    return NeedToKnow.configure(knobs, REF)


def lookup(ts=T0, user="pc-1001", case="CASE-0001", ids=("P-000001",), area=None, kind="record_access",
           **fields):
    doc = {"custodes": {"record": {"postcode_area": area}}} if area else {}
    return ev(user, ts, kind, case_ref=case, record_ids=ids, dataset="pnc-persons", doc=doc,
              **fields)


def reasons(alerts):
    return sorted(a.facts["reason"] for a in alerts.values())


@pytest.mark.parametrize("event, expected", [
    (lookup(), []),  # assigned to the case
    (lookup(case=None), ["no_case"]),
    (lookup(case="CASE-9999"), ["unknown_case"]),
    (lookup(case="CASE-0002"), ["not_assigned"]),
    (lookup(ids=("P-VIP-0001",)), ["restricted"]),
    (lookup(ids=("P-000001", "P-COL-0002")), ["restricted"]),
    (lookup(area="NG7"), []),  # pc-1001 lives in NG7, but CASE-0001 is theirs: a signal, not an alert
    (lookup(case=None, area="NG7"), ["neighbour", "no_case"]),
    (lookup(case="CASE-0002", area="ng7 4fq"), ["neighbour", "not_assigned"]),
    (lookup(case=None, area="NG"), ["neighbour", "no_case"]),  # an area-level field still matches
    (lookup(area="NG8"), []),
    (lookup(case="CASE-0002", ids=("P-VIP-0001",), area="NG7"), ["neighbour", "not_assigned", "restricted"]),
    (lookup(case=None, kind="export"), []),  # not a look-up
])
def test_reasons(event, expected):
    assert reasons(run(det(), [[event]])[1]) == expected


def test_without_reference_data_only_the_missing_case_is_judged():
    plain = NeedToKnow()
    assert reasons(run(plain, [[lookup(case="CASE-9999", ids=("P-VIP-0001",), area="NG7")]])[1]) == []
    assert reasons(run(plain, [[lookup(case=None)]])[1]) == ["no_case"]


def test_threshold_edges_count_lookups_in_the_window():
    d = det(max_per_window={"no_case": 3})
    events = [lookup(T0 + i * 60, case=None) for i in range(5)]
    _, alerts = run(d, [events[:3]])
    assert not alerts  # 3 is not more than 3
    _, alerts = run(d, [events[:4]])
    assert [(a.count, a.facts["lookups_in_window"]) for a in alerts.values()] == [(1, 4)]
    _, alerts = run(d, [events])
    assert [(a.count, a.facts["lookups_in_window"]) for a in alerts.values()] == [(2, 5)]
    assert "look-up number 5" in next(iter(alerts.values())).explanation


def test_window_edge_one_bucket_granularity():
    d = det(max_per_window={"no_case": 1})
    # two look-ups a window apart do not count together; a window minus a bucket apart do
    assert not run(d, [[lookup(T0, case=None), lookup(T0 + 86400, case=None)]])[1]
    assert run(d, [[lookup(T0, case=None), lookup(T0 + 86400 - 3600, case=None)]])[1]


def test_out_of_order_within_grace_counts_after_it_does_not():
    d = det(max_per_window={"no_case": 1})
    late_ok = [lookup(T0 + 90000, case=None), lookup(T0 + 90000 - 3000, case=None)]
    assert run(d, [late_ok])[1]
    too_late = [lookup(T0 + 200000, case=None), lookup(T0 + 200000 - 86400 - 3601, case=None),
                lookup(T0 + 200000 - 86400 - 3000, case=None)]
    assert not run(d, [too_late])[1]  # the second is beyond window+grace: not counted


def test_batching_gives_the_same_alerts_and_state_expires():
    events = [lookup(T0 + i * 700, case=c) for i, c in enumerate([None, "CASE-0002", None, "CASE-0001"])]
    state, whole = run(det(), [events])
    _, split = run(det(), one_by_one(events))
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}
    assert sorted(a.count for a in whole.values()) == [1, 2]
    state, _ = run(det(), [[ev("pc-1001", T0 + 86400 * 2 + 7200)]], state)
    assert state is None


def test_explanations_do_not_hold_record_content():
    (a,) = [a for a in run(det(), [[lookup(case="CASE-0002", area="NG7", ids=("P-123456",))]])[1].values()
            if a.facts["reason"] == "neighbour"]
    assert "home postcode area ({home_area}" in a.explanation and "P-123456" not in a.explanation
    assert "NG7" not in a.explanation  # the home area is masked: a placeholder, the value in facts.masked
    assert a.facts["masked"] == {"postcode_area": "NG7", "home_area": "NG7"}


def test_case_references_are_placeholders_not_text():
    (a,) = run(det(), [[lookup(case="CASE-0002")]])[1].values()
    assert a.facts["reason"] == "not_assigned" and "CASE-0002" not in a.title + a.explanation
    assert "gave case {case_ref}," in a.explanation and a.facts["masked"] == {"case_ref": "CASE-0002"}
    assert "CASE-0002" not in str({k: v for k, v in a.facts.items() if k != "masked"})


def test_a_document_view_is_not_a_record_lookup():
    """Drive "view" and SharePoint FileAccessed are record_access by the activity table; a document that
    names no record, count or dataset is not judged, one that does is."""
    from detectors.need_to_know import NeedToKnow

    from .helpers import T0, ev, example_reference, run

    det = NeedToKnow.configure({}, example_reference())
    views = [ev("pc-1001", T0 + i, "record_access", object_id=f"drive:{i}") for i in range(5)]
    assert not run(det, [views])[1]
    named = [ev("pc-1001", T0 + i, "record_access", object_id=f"drive:{i}", dataset="pnc-persons") for i in range(5)]
    assert run(det, [named])[1]


def test_home_area_lookups_under_own_case_and_lookups_under_the_limit_are_signals():
    from .helpers import run_all

    d = det(max_per_window={"no_case": 2}, signal_weights={"neighbour_in_case": 2.0})
    events = [lookup(T0, area="NG7"), lookup(T0 + 60, case=None), lookup(T0 + 120, case=None),
              lookup(T0 + 180, case=None)]
    _, alerts, signals = run_all(d, [events])
    assert [(s.reason, s.weight) for s in signals] == [("neighbour_in_case", 2.0), ("no_case", 4.0), ("no_case", 4.0)]
    assert reasons(alerts) == ["no_case"]  # the third uncased look-up within the day is over the limit
    _, alerts, signals = run_all(det(case_justifies_neighbour=False), [[lookup(T0, area="NG7")]])
    assert reasons(alerts) == ["neighbour"] and not signals
