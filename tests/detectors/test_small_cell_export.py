import pytest

from detectors.small_cell_export import SmallCellExport

from .helpers import T0, ev, one_by_one, run


def agg(m, ts=T0, dataset="cell-site-footfall", kind="export", **fields):
    return ev("an-3002", ts, kind, dataset=dataset, min_group_size=m, **fields)


@pytest.mark.parametrize("m, fires", [(49, True), (50, False), (51, False), (1, True), (0, True), (None, False)])
def test_k_edge(m, fires):
    assert bool(run(SmallCellExport(), [[agg(m)]])[1]) is fires


def test_k_is_configurable_and_the_score_grows_as_the_cell_shrinks():
    d = SmallCellExport.configure({"k": 10})
    assert not run(d, [[agg(10)]])[1] and run(d, [[agg(9)]])[1]
    scores = [next(iter(run(SmallCellExport(), [[agg(m)]])[1].values())).score for m in (40, 10, 3, 1)]
    assert scores == sorted(scores) and scores[-1] >= 85


def test_explanation_states_the_smallest_group_and_k():
    (a,) = run(SmallCellExport(), [[agg(3, channel="sftp")]])[1].values()
    assert "smallest group holds 3 people, below the minimum of 50" in a.explanation
    assert a.facts["min_group_size"] == 3


def test_only_export_channels_count():
    assert not run(SmallCellExport(), [[agg(3, kind="record_access")]])[1]


def test_suppression_per_dataset_counts_and_expires():
    events = [agg(3, T0), agg(4, T0 + 60), agg(3, T0 + 120, dataset="other"), agg(5, T0 + 86400)]
    state, whole = run(SmallCellExport(), [events])
    _, split = run(SmallCellExport(), one_by_one(events))
    assert sorted(a.count for a in whole.values()) == [1, 1, 2]
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}
    state, _ = run(SmallCellExport(), [[ev("an-3002", T0 + 3 * 86400)]], state)
    assert state is None
