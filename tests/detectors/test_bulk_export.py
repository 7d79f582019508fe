import pytest

from detectors.alert import alert_id
from detectors.bulk_export import BulkExport

from .helpers import T0, ev, one_by_one, run


def export(ts=T0, n=100, kind="export", sensitivity="high", **fields):
    return ev("st-3001", ts, kind, record_count=n, sensitivity=sensitivity, dataset="firearm-certificates",
              **fields)


@pytest.mark.parametrize("counts, alerts", [((199,), 0), ((200,), 0), ((201,), 1), ((150, 50), 0), ((150, 51), 1)])
def test_threshold_edges_high(counts, alerts):
    _, got = run(BulkExport(), [[export(T0 + i, n) for i, n in enumerate(counts)]])
    assert len(got) == alerts


@pytest.mark.parametrize("kind, extra, counted", [
    ("export", {}, True), ("print", {}, True), ("removable_media", {}, True), ("web_upload", {}, True),
    ("share", {}, True), ("record_access", {}, True),
    ("message", {"file_name": "holders.xlsx"}, True),
    ("message", {"media": [{"type": "application/vnd.ms-excel"}]}, True),
    ("message", {}, False), ("logon", {}, False),
])
def test_channels(kind, extra, counted):
    _, got = run(BulkExport(), [[export(n=300, kind=kind, **extra)]])
    assert bool(got) is counted


def test_window_edge_and_alert_id_unchanged():
    # 150 at T0, 51 exactly a window later: not in the same window
    assert not run(BulkExport(), [[export(T0, 150), export(T0 + 3600, 51)]])[1]
    _, got = run(BulkExport(), [[export(T0, 150), export(T0 + 3540, 51)]])
    (a,) = got.values()
    assert a.id == alert_id("bulk_export", "st-3001", f"high:{T0 + 3540!r}")  # the first release's id form


def test_folds_and_reopens_after_suppress_s():
    events = [export(T0, 201), export(T0 + 60, 1), export(T0 + 120, 1), export(T0 + 3600, 201)]
    _, got = run(BulkExport(), [events])
    assert sorted(a.count for a in got.values()) == [1, 3]
    (first,) = [a for a in got.values() if a.count == 3]
    assert first.facts["records"] == 203 and "3 matching events" in first.explanation


def test_out_of_order_within_window_plus_grace_counts_beyond_it_does_not():
    # 100 at T0, then a newer event; a late 110 at T0+700 would make 210 > 200 in its window
    within = [export(T0, 100), export(T0 + 4000, 1), export(T0 + 700, 110)]  # 3300 s late: counted
    assert run(BulkExport(), [within])[1]
    too_late = [export(T0, 100), export(T0 + 4900, 1), export(T0 + 700, 110)]  # 4200 s late: not
    assert not run(BulkExport(), [too_late])[1]
    assert not run(BulkExport(), one_by_one(too_late))[1]


def test_batching_gives_the_same_ids_and_counts():
    events = [export(T0 + i * 7, 30 + i) for i in range(20)]
    _, whole = run(BulkExport(), [events])
    _, split = run(BulkExport(), one_by_one(events))
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}


def test_state_expires_and_old_state_is_accepted():
    state, _ = run(BulkExport(), [[export(T0, 250)]])
    state, _ = run(BulkExport(), [[export(T0 + 7200 + 600, 1, sensitivity="low")]], state)
    assert set(state["l"]) == {"high", "low"}  # the high window may still matter to a late event
    state, _ = run(BulkExport(), [[ev("st-3001", T0 + 20000, "export", record_count=0)]], state)
    assert state is None  # nothing counts any more, whatever sensitivity
    first_release = {"high": {"b": [[T0, 150]], "d": {}, "e": ["x"], "a": None, "n": T0}}
    _, got = run(BulkExport(), [[export(T0 + 60, 51)]], first_release)
    assert len(got) == 1
