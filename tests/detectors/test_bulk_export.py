from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.alert import alert_id
from detectors.bulk_export import BulkExport, upgrade

from .helpers import T0, cut, ev, one_by_one, run


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
    assert set(state["records"]) == {"high", "low"}  # the high window may still matter to a late event
    state, _ = run(BulkExport(), [[ev("st-3001", T0 + 20000, "export", record_count=0)]], state)
    assert state is None  # nothing counts any more, whatever sensitivity
    first_release = {"high": {"b": [[T0, 150]], "d": {}, "e": ["x"], "a": None, "n": T0}}
    _, got = run(BulkExport(), [[export(T0 + 60, 51)]], first_release)
    assert len(got) == 1


def _level(state, sensitivity="high"):
    return state["records"][sensitivity]


def test_users_far_below_every_threshold_hold_no_event_ids():
    # high: 200 records or 100 distinct ids; evidence from 25 % of either (50 records, 25 ids)
    events = [export(T0 + 60 * i, 4, record_ids=[f"P{i}"]) for i in range(12)]  # 48 records, 12 ids
    state, got = run(BulkExport(), [events])
    assert not got
    assert _level(state)["evidence"] == [] and _level(state)["records_at_most"] == 48


@pytest.mark.parametrize("evidence_from, held", [
    (0.25, ["c", "d", "e"]),  # the window holds 40, 45, 55 (>= 50: from here), 155, 205 records
    (0.0, ["a", "b", "c", "d", "e"]),  # every counted event, as the first release kept them
    (1.0, ["e"]),  # only what is over
])
def test_evidence_starts_at_a_fraction_of_a_threshold(evidence_from, held):
    det = BulkExport(BulkExport.Config(evidence_from=evidence_from))
    events = [ev("st-3001", T0 + 60 * i, "export", id=name, record_count=n, sensitivity="high")
              for i, (name, n) in enumerate([("a", 40), ("b", 5), ("c", 10), ("d", 100), ("e", 50)])]
    _, got = run(det, [events])
    (alert,) = got.values()
    assert list(alert.evidence_event_ids) == held
    assert alert.facts["records"] == 205  # the counting does not change


def test_distinct_ids_also_start_the_evidence():
    # 5 new ids per event: 25 distinct ids (25 % of 100) at the fifth event, only 25 records (of 200)
    events = [ev("st-3001", T0 + 60 * i, "record_access", id=f"v{i}", sensitivity="high",
                 record_ids=[f"P{i}-{k}" for k in range(5)]) for i in range(7)]
    state, got = run(BulkExport(), [events])
    assert not got
    assert _level(state)["evidence"] == ["v4", "v5", "v6"]


def test_evidence_is_dropped_oldest_first_beyond_ten():
    events = [ev("st-3001", T0 + 10 * i, "export", id=f"x{i}", record_count=20, sensitivity="high")
              for i in range(16)]  # over 200 at the 11th (220); evidence from the 3rd (60)
    _, got = run(BulkExport(), [events])
    (alert,) = got.values()
    assert list(alert.evidence_event_ids) == [f"x{i}" for i in range(6, 16)]
    assert alert.count == 6 and alert.facts["records"] == 320


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 7200), st.integers(0, 80), st.sampled_from(["low", "high", "special"]),
                          st.integers(0, 3)), max_size=40),
       st.lists(st.integers(1, 8), max_size=20))
def test_evidence_and_facts_do_not_depend_on_batching(rows, cuts):
    events = [ev("st-3001", T0 + t, "export", id=f"h{i}", record_count=n, sensitivity=s,
                 record_ids=[f"R{(i * 7 + k) % 40}" for k in range(ids)])
              for i, (t, n, s, ids) in enumerate(rows)]
    _, whole = run(BulkExport(), [events] if events else [])
    _, split = run(BulkExport(), cut(events, cuts))
    assert {a.id: (a.count, a.evidence_event_ids, a.facts) for a in whole.values()} == \
        {a.id: (a.count, a.evidence_event_ids, a.facts) for a in split.values()}


def test_evidence_ends_when_the_window_falls_back_but_not_for_a_late_event():
    high = [ev("st-3001", T0 + 60 * i, "export", id=f"h{i}", record_count=30, sensitivity="high") for i in range(3)]
    state, _ = run(BulkExport(), [high])
    assert _level(state)["evidence"] == ["h1", "h2"]  # 60 and 90 records in the window
    late = ev("st-3001", T0 - 4000, "export", id="late", record_count=1, sensitivity="high")  # any window: 1
    state, _ = run(BulkExport(), [[late]], state)
    assert _level(state)["evidence"] == ["h1", "h2"]  # a late event says nothing about now
    inside = ev("st-3001", T0 - 1800, "export", id="inside", record_count=1, sensitivity="high")
    state, _ = run(BulkExport(), [[inside]], state)  # late, but part of the busy window: evidence
    assert _level(state)["evidence"] == ["h1", "h2", "inside"]
    quiet = ev("st-3001", T0 + 3600 + 200, "export", id="q", record_count=1, sensitivity="high")  # window: 1
    state, _ = run(BulkExport(), [[quiet]], state)
    assert _level(state)["evidence"] == []


# -- documents, not only records (issue 16): distinct documents downloaded or exported in 5 minutes ----

def download(ts=T0, doc="d0", sensitivity=None, kind="export", **fields):
    """A Drive / SharePoint download as the readers emit it: activity export, an object id, no records."""
    return ev("rv-4002", ts, kind, object_id=doc, sensitivity=sensitivity, **fields)


def downloads(n, start=T0, step=10.0, prefix="d", **fields):
    return [download(start + i * step, f"{prefix}{i}", **fields) for i in range(n)]


def document_alerts(batches, **config):
    det = BulkExport.configure(config) if config else BulkExport()
    return [a for a in run(det, batches)[1].values() if a.facts["key"].startswith("documents:")]


@pytest.mark.parametrize(("events", "alerts", "documents"), [
    (downloads(19), 0, None),                                   # below the default (medium: 20)
    (downloads(20), 1, 20),                                     # 20 distinct in 190 s: at the threshold
    (downloads(30, step=8), 1, 30),                             # 30 in 4 minutes: one alert, folded
    (downloads(60, step=4), 1, 40),                             # reported exactly up to twice the threshold
    (downloads(19) + [download(T0 + 200 + i, "d3") for i in range(10)], 0, None),  # repeats not counted
    (downloads(19, step=15) + [download(T0 + 300, "d19")], 0, None),  # the first is out of the window
    (downloads(19, step=15) + [download(T0 + 299, "d19")], 1, 20),     # just inside it
    (downloads(10, sensitivity="high"), 1, 10),                 # per sensitivity: high flags at 10
    (downloads(9, sensitivity="high"), 0, None),
    (downloads(5, sensitivity="special"), 1, 5),
    (downloads(39, sensitivity="low", step=5), 0, None),
    (downloads(40, sensitivity="low", step=5), 1, 40),
    (downloads(10, sensitivity="high", step=1) + downloads(10, sensitivity="low", prefix="x", start=T0 + 20),
     1, 10),                                                   # each sensitivity counts its own
])
def test_documents_case_table(events, alerts, documents):
    got = document_alerts([events])
    assert len(got) == alerts
    if documents is not None:
        assert got[0].facts["documents"] == documents
        assert "documents" in got[0].title and f"{documents:,} distinct documents" in got[0].explanation


@pytest.mark.parametrize(("fields", "counted"), [
    ({"object_id": "drive:1"}, True),
    ({"object_id": None, "file_name": "plan.docx"}, True),                      # file name when no object id
    ({"object_id": None, "file_name": "holders.csv", "record_count": 100}, False),  # a record export
    ({"object_id": None}, False),                                                # nothing names a document
    ({"object_id": "drive:1", "kind": "share"}, False),                         # not a download/export
    ({"object_id": "drive:1", "kind": "record_access"}, False),
    ({"object_id": "drive:1", "outcome": "success"}, True),
    ({"object_id": "drive:1", "outcome": "failure"}, False),                    # refused: nothing left
])
def test_what_counts_as_a_document(fields, counted):
    fields = dict(fields)
    kind = fields.pop("kind", "export")
    one_doc = fields.pop("object_id")
    events = [ev("rv-4002", T0 + i, kind, object_id=None if one_doc is None else f"{one_doc}-{i}",
                 **({k: (f"{v}-{i}" if k == "file_name" else v) for k, v in fields.items()}))
              for i in range(20)]
    assert bool(document_alerts([events])) is counted


def test_documents_fold_into_one_alert_and_reopen_after_suppress_s():
    first = downloads(25, step=5)
    again = downloads(20, start=T0 + 4000, prefix="y", step=5)
    got = sorted(document_alerts([first + again]), key=lambda a: a.first_seen)
    assert [(a.count, a.facts["documents"]) for a in got] == [(6, 25), (1, 20)]
    assert got[0].severity == "medium" and got[0].evidence_event_ids  # evidence kept


def test_documents_and_records_are_separate_alerts():
    events = downloads(20) + [export(T0 + 10, 500)]
    _, got = run(BulkExport(), [events])
    assert sorted(a.facts["key"] for a in got.values()) == ["documents:medium", "high"]


def test_documents_late_within_grace_count_beyond_it_do_not():
    base = downloads(19, step=5)                                  # T0 .. T0 + 90
    late = download(T0 + 100, "late")                             # its window holds all 19 and itself
    within = [*base, download(T0 + 950, "newer"), late]          # 850 s late: within window + grace (900 s)
    assert document_alerts([within])
    too_late = [*base, download(T0 + 1001, "newer"), late]       # 901 s late: beyond it
    assert not document_alerts([too_late])
    assert not document_alerts(one_by_one(too_late))


def test_document_state_is_bounded_and_expires():
    det = BulkExport()
    state, _ = run(det, [downloads(1000, step=0.2)])  # 1,000 distinct documents in 200 s
    medium = state["documents"]["medium"]
    assert len(medium["document_ids"]) <= 40 and len(medium["evidence"]) <= 10
    assert all(len(h) == 12 for h in medium["document_ids"])  # short hashes, not the ids
    state, _ = run(det, [[download(T0 + 5000, "later")]], state)
    assert list(state["documents"]["medium"]["document_ids"]) and len(state["documents"]["medium"]["document_ids"]) == 1
    state, _ = run(det, [[ev("rv-4002", T0 + 20000, "export", record_count=0)]], state)
    assert state is None


def test_document_thresholds_come_from_config():
    events = downloads(6)
    assert not document_alerts([events])
    assert document_alerts([events], min_documents={"medium": 6})
    assert not document_alerts([events], min_documents={"medium": 6}, document_kinds=["print"])
    assert not document_alerts([downloads(20, step=30)], document_window_s=300)  # 570 s: spread out
    assert document_alerts([downloads(20, step=30)], document_window_s=600)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.lists(
        st.tuples(st.floats(0, 900), st.integers(0, 30), st.sampled_from([None, "medium", "high"]),
                  st.sampled_from(["export", "export", "share", "record_access"])),
        max_size=80),
    cuts=st.lists(st.integers(1, 40), max_size=6),
)
def test_documents_batching_does_not_change_alerts(stream, cuts):
    events = [ev("rv-4002", T0 + t, kind, object_id=f"doc-{d}", sensitivity=s) for t, d, s, kind in stream]
    det = BulkExport.configure({"min_documents": {"medium": 6, "high": 4}})
    _, whole = run(det, [events]) if events else (None, {})
    _, split = run(det, cut(events, cuts))
    _, single = run(det, one_by_one(events))
    expected = {a.id: (a.count, a.facts.get("documents")) for a in whole.values()}
    assert {a.id: (a.count, a.facts.get("documents")) for a in split.values()} == expected
    assert {a.id: (a.count, a.facts.get("documents")) for a in single.values()} == expected


def test_documents_arriving_out_of_order_are_judged_by_the_busiest_window_containing_them():
    """Events re-keyed from another partition arrive after newer ones: the burst is still found."""
    events = downloads(20, step=5)  # T0 .. T0 + 95
    shuffled = events[10:] + events[:10]  # the first ten arrive last
    assert [a.facts["documents"] for a in document_alerts([shuffled])] == [20]
    assert [a.facts["documents"] for a in document_alerts(one_by_one(shuffled))] == [20]
    spread = [download(T0 + 400 + i, f"n{i}") for i in range(10)] + downloads(10, step=5)  # 300 s apart
    assert not document_alerts([spread])


def test_records_arriving_out_of_order_are_judged_by_the_busiest_window_containing_them():
    """300 high-sensitivity records in ten minutes, the older half delivered after the newer half (as
    events re-keyed from another partition are): one alert, as in time order."""
    events = [export(T0 + i * 60, 30) for i in range(10)]
    in_order = run(BulkExport(), [events])[1]
    assert [(a.count, a.facts["records"]) for a in in_order.values()] == [(4, 300)]
    late = events[5:] + events[:5]
    for batches in ([late], one_by_one(late)):
        got = run(BulkExport(), batches)[1]
        assert [a.facts["records"] for a in got.values()] == [300]
    # ... but not a burst the late event is not part of: 150 records a window before 60 more
    apart = [export(T0 + 3600 + i * 60, 12) for i in range(5)] + [export(T0 + i * 60, 30) for i in range(5)]
    assert not run(BulkExport(), [apart])[1]


# -- stored state of earlier versions (issue 15 item 5: readable field names, state version 3) ---------

STATE_V2 = Path(__file__).with_name("bulk_export_state_v2.json")
"""The state version 2 (one-letter keys) stored after :func:`_before`'s events: written by bulk_export as
of commit dca1451 (``run(BulkExport(), [_before()])``, orjson with sorted keys)."""


def _before():
    """Records with ids over the high threshold, low records below it, and 22 documents in 5 minutes."""
    out = [ev("st-3001", T0 + 60 * i, "export", id=f"r{i}", record_count=60, sensitivity="high",
              record_ids=[f"P{i}", f"P{i + 1}"], dataset="firearm-certificates") for i in range(5)]
    out += [ev("st-3001", T0 + 30 + 60 * i, "record_access", id=f"l{i}", sensitivity="low", record_ids=[f"L{i}"])
            for i in range(3)]
    out += [ev("st-3001", T0 + 400 + 10 * i, "export", id=f"d{i}", object_id=f"drive/{i}") for i in range(22)]
    return out


def _after():
    """More of each, inside the open windows (folded into the same alerts) and past them."""
    out = [ev("st-3001", T0 + 600 + 60 * i, "export", id=f"s{i}", record_count=30, sensitivity="high",
              record_ids=[f"P{i + 3}"]) for i in range(4)]
    out += [ev("st-3001", T0 + 640 + 5 * i, "export", id=f"f{i}", object_id=f"drive/{i + 20}") for i in range(6)]
    out += [ev("st-3001", T0 + 9000, "export", id="late-low", record_count=5010, sensitivity="low")]
    return out


def _downgrade(state):
    """Version 3 -> the version 2 layout (what releases before it stored), the inverse of ``upgrade``."""
    out = {"l": {s: {"b": lvl["buckets"], "d": lvl["record_ids"], "e": lvl["evidence"],
                     **({"t": lvl["records_at_most"]} if "records_at_most" in lvl else {})}
                 for s, lvl in state["records"].items()},
           "o": {k: {{"records": "r", "distinct_records": "u", "documents": "m"}.get(f, f): v for f, v in rec.items()}
                 for k, rec in state["open"].items()},
           "n": state["newest"]}
    if "documents" in state:
        out["m"] = {s: {"d": lvl["document_ids"], "e": lvl["evidence"]} for s, lvl in state["documents"].items()}
    return out


def _summary(alerts):
    return {a.id: (a.count, a.title, a.explanation, a.evidence_event_ids, a.facts, a.first_seen, a.last_seen)
            for a in alerts.values()}


def test_stored_state_of_version_2_loads_and_counts_on():
    old = orjson.loads(STATE_V2.read_bytes())
    assert "l" in old and "o" in old  # really the old layout
    state, got = run(BulkExport(), [_before()])
    assert len(got) == 2  # records (high) and documents (medium): the open windows the old state holds
    assert upgrade(old) == state
    assert not [k for k in _keys(state) if len(k) == 1 and k not in "snflept"]  # only suppression's record keys
    from_old, after_old = run(BulkExport(), [_after()], old)
    from_new, after_new = run(BulkExport(), [_after()], state)
    assert from_old == from_new and _summary(after_old) == _summary(after_new)
    assert sorted(a.count for a in after_new.values()) == [1, 6, 9]  # folded into the open windows; a new one


def test_state_of_the_first_release_still_loads():
    first_release = {"high": {"b": [[T0, 150]], "d": {}, "e": ["x"], "a": None, "n": T0}}
    up = upgrade(first_release)
    assert up == {"records": {"high": {"buckets": [[T0, 150]], "record_ids": {}, "evidence": ["x"]}}, "open": {}}
    _, got = run(BulkExport(), [[export(T0 + 60, 51)]], first_release)
    assert len(got) == 1 and next(iter(got.values())).facts["records"] == 201


def _keys(value):
    if isinstance(value, dict):
        for k, v in value.items():
            if not (len(k) == 12 and all(c in "0123456789abcdef" for c in k)):  # hashed ids are data, not names
                yield k
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 9000), st.integers(0, 300), st.sampled_from(["low", "high", None]),
                          st.integers(0, 3), st.sampled_from(["export", "record_access", "share"]),
                          st.integers(-1, 25)), max_size=60),
       st.integers(0, 60))
def test_a_version_2_state_continues_exactly_like_the_version_3_state(rows, at):
    """Whatever the state holds, storing it in the old layout and reading it back (``upgrade``) changes
    nothing: the same state and the same alerts afterwards."""
    events = [ev("st-3001", T0 + t, kind, id=f"h{i}", record_count=n or None, sensitivity=s,
                 record_ids=[f"R{(i * 7 + k) % 40}" for k in range(ids)],
                 object_id=f"doc-{d}" if d >= 0 else None)
              for i, (t, n, s, ids, kind, d) in enumerate(rows)]
    det = BulkExport.configure({"min_documents": {"medium": 6, "high": 4}})
    state, _ = run(det, [events[:at]] if events[:at] else [])
    if state is None:
        return
    assert upgrade(_downgrade(state)) == state
    from_old, alerts_old = run(det, [events[at:]], _downgrade(state))
    from_new, alerts_new = run(det, [events[at:]], state)
    assert from_old == from_new and _summary(alerts_old) == _summary(alerts_new)
@pytest.mark.parametrize("role, records, alerts", [
    ("analyst", 5001, 0), ("analyst", 20000, 0), ("analyst", 20001, 1),   # the role's own threshold
    ("constable", 5000, 0), ("constable", 5001, 1),                        # everyone else: max_records
    (None, 5001, 1),                                                        # not in the staff directory
])
def test_role_max_records_replace_the_threshold_for_that_role(role, records, alerts):
    from detectors.reference import Reference

    ref = Reference()
    if role is not None:
        ref = ref.apply("staff", {"user_id": "st-3001", "role": role})
    det = BulkExport.configure({"role_max_records": {"analyst": {"low": 20000}}}, ref)
    _, got = run(det, [[export(n=records, sensitivity="low")]])
    assert len(got) == alerts
    if got:
        (alert,) = got.values()
        threshold = 20000 if role == "analyst" else 5000
        assert alert.facts["max_records"] == threshold and f"threshold {threshold:,}" in alert.explanation


def test_role_max_records_leave_other_sensitivities_and_scale_distinct_ids():
    from detectors.reference import Reference

    ref = Reference().apply("staff", {"user_id": "st-3001", "role": "analyst"})
    det = BulkExport.configure({"role_max_records": {"analyst": {"low": 20000}}}, ref)
    _, got = run(det, [[export(n=201, sensitivity="high")]])
    assert len(got) == 1  # high: the ordinary 200
    ids = [f"R{i}" for i in range(1001)]
    _, got = run(det, [[ev("st-3001", T0, "export", sensitivity="low", record_ids=tuple(ids), dataset="x")]])
    assert not got  # distinct low ids: 1,000 x 4 for an analyst
