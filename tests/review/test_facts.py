"""Alert facts in words with units, and the window chart (counts and times only)."""

from __future__ import annotations

from xml.etree import ElementTree

from hypothesis import given
from hypothesis import strategies as st

from review.charts import bars_for, window_chart
from review.facts import describe

BULK = {"sensitivity": "high", "window_s": 3600, "records": 60005, "distinct_records": 0, "max_records": 200,
        "max_distinct_records": 100, "dataset": "case-files", "channel": "email_sent", "key": "high",
        "suppress_s": 3600}


def test_facts_read_as_words_with_units():
    shown = {f.label: f.value for f in describe(BULK)}
    assert shown["Window"] == "1 hour"
    assert shown["One alert per"] == "1 hour"
    assert shown["Records in the window"] == "60,005"
    assert shown["Threshold (records)"] == "200"
    assert shown["Distinct record ids in the window"] == "none given by the source"
    assert shown["Latest via"] == "email sent"
    assert not any("_" in label or label.endswith(" s") for label in shown)  # no raw config keys
    assert "key" not in {f.key for f in describe(BULK)}  # fold machinery is not shown


def test_unknown_facts_still_show_worded_from_their_name():
    shown = {f.label: f.value for f in describe({"idle_s": 90, "new_thing": 3, "open": None})}
    assert shown == {"Idle": "90 seconds", "New thing": "3", "Open": "—"}


def test_a_masked_fact_stays_masked():
    masked = {"masked": True, "size": "12 characters"}
    [fact] = describe({"destination": masked})
    assert fact.label == "Destination" and fact.value == masked


def test_travel_and_volume_facts_have_units():
    shown = {f.label: f.value for f in describe({"distance_km": 412.3, "interval_s": 1800, "speed_kmh": 825,
                                                  "bucket": 26, "mean": 0.25, "z": 4.123})}
    assert shown["Distance"] == "412.3 km" and shown["Speed needed"] == "825 km/h"
    assert shown["Time between the two places"] == "30 minutes"
    assert shown["Hour of the week"] == "Tuesday 02:00-02:59 UTC"
    assert shown["Deviation from usual (z)"] == "4.1"


def test_the_window_chart_draws_each_count_against_its_threshold():
    evidence = [{"id": "e1", "ts": 1_770_000_000.0, "record_count": 5, "content": "SECRET-CONTENT"},
                {"id": "e2", "ts": 1_770_000_600.0, "record_count": 60000}]
    svg = str(window_chart(BULK, evidence, 1_770_000_000.0, 1_770_000_600.0))
    root = ElementTree.fromstring(svg)  # well-formed
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}rect")) == 2  # records and distinct ids
    assert len(root.findall(f"{ns}line[@class='limit']")) == 2
    assert len(root.findall(f"{ns}circle")) == 2
    assert "threshold 200" in svg and "60,005" in svg
    assert "SECRET-CONTENT" not in svg and "case-files" not in svg  # counts and times only
    assert "style=" not in svg and "<script" not in svg  # works under the CSP


def test_no_chart_without_counts_or_evidence_times():
    assert window_chart({"app_id": "x"}, [], None, None) is None
    assert bars_for({"records": 5}) == []  # a count without its threshold is no comparison


@given(st.dictionaries(st.sampled_from(["records", "max_records", "reveals", "max_reveals", "window_s"]),
                       st.integers(0, 10**9) | st.floats(0, 1e9, allow_nan=False)),
       st.lists(st.fixed_dictionaries({"ts": st.floats(0, 2e9, allow_nan=False),
                                       "record_count": st.integers(0, 10**6) | st.none()}), max_size=12))
def test_the_chart_is_always_well_formed(facts, evidence):
    svg = window_chart(facts, evidence, None, None)
    if svg is not None:
        ElementTree.fromstring(str(svg))
