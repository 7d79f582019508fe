# ruff: noqa: E501 - rule texts and event rows read best one a line
"""Correlation rules: what each type counts, its window and group-by, bounded state, and the same
alerts however the stream is cut into batches (hypothesis)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma import SigmaConfig

from ..helpers import T0, counts, cut, ev, one_by_one, run
from .helpers import ruleset, unit

BASE = """title: {name}
id: {id}
name: {name}
logsource:
    product: custodes
detection:
    sel:
        event.action: {action}
    condition: sel
level: low
"""


def base(name: str, action: str, n: int) -> str:
    return BASE.format(name=name, action=action, id=f"aaaaaaaa-0000-4000-8000-{n:012d}")


def correlation(kind: str, rules: list[str], condition: str = "", group: str = "user.id",
                timespan: str = "10m", extra: str = "") -> str:
    listed = "".join(f"        - {r}\n" for r in rules)
    cond = f"    condition:\n{condition}" if condition else ""
    groups = "".join(f"        - {g}\n" for g in group.split(","))
    return f"""title: corr {kind}
id: bbbbbbbb-0000-4000-8000-000000000001
level: high
{extra}correlation:
    type: {kind}
    rules:
{listed}    group-by:
{groups}    timespan: {timespan}
{cond}"""


def doc_event(ts: float, action: str, user: str = "pc-1", **doc: Any) -> Any:
    body = {"event": {"action": action}, **doc}
    return ev(user, ts, doc=body, action=action)


def corr_alerts(alerts: dict) -> list:
    return [a for a in alerts.values() if a.facts.get("correlation")]


def test_event_count_counts_within_the_timespan() -> None:
    det = unit(base("login_failed", "login_failed", 1), correlation("event_count", ["login_failed"], "        gte: 3\n"))
    three_apart = [doc_event(T0 + i * 400, "login_failed") for i in range(3)]  # 800 s apart end to end
    _, alerts = run(det, [three_apart])
    assert not corr_alerts(alerts)
    three_close = [doc_event(T0 + i * 60, "login_failed") for i in range(4)]
    state, alerts = run(det, [three_close])
    (alert,) = corr_alerts(alerts)
    assert alert.count == 2  # the 3rd and the 4th event each meet the condition: folded into one alert
    assert alert.facts["observed"] == 4 and alert.facts["condition"] == {"gte": 3}
    assert alert.severity == "high" and alert.facts["rule_id"] == "bbbbbbbb-0000-4000-8000-000000000001"
    # the base rule is used by a correlation without generate: no alert of its own
    assert not [a for a in alerts.values() if a.facts["rule_id"].startswith("aaaaaaaa")]
    assert "b" in orjson.dumps(state).decode()


def test_generate_keeps_the_base_rule_alerts() -> None:
    det = unit(base("login_failed", "login_failed", 1),
               correlation("event_count", ["login_failed"], "        gte: 2\n").replace(
                   "    type: event_count", "    type: event_count\n    generate: true"))
    _, alerts = run(det, [[doc_event(T0, "login_failed"), doc_event(T0 + 1, "login_failed")]])
    assert [a for a in alerts.values() if a.facts["rule_id"].startswith("aaaaaaaa")]


def test_value_count_counts_distinct_values_and_keeps_few() -> None:
    det = unit(base("dl", "download", 1),
               correlation("value_count", ["dl"], "        field: custodes.object.id\n        gte: 3\n"))
    same = [doc_event(T0 + i, "download", custodes={"object": {"id": "doc-1"}}) for i in range(10)]
    _, alerts = run(det, [same])
    assert not corr_alerts(alerts)
    many = [doc_event(T0 + i, "download", custodes={"object": {"id": f"doc-{i}"}}) for i in range(50)]
    state, alerts = run(det, [many])
    (alert,) = corr_alerts(alerts)
    assert alert.facts["observed"] >= 3
    group = next(iter(state["c"]["bbbbbbbb-0000-4000-8000-000000000001"].values()))
    assert len(group["v"]) <= 4  # count + 1 values at most, never the 50


def test_group_by_other_fields_within_the_person() -> None:
    det = unit(base("login_failed", "login_failed", 1),
               correlation("event_count", ["login_failed"], "        gte: 3\n", group="user.id,source.ip"))
    spread = [doc_event(T0 + i, "login_failed", source={"ip": f"10.0.0.{i % 3}"}) for i in range(6)]
    _, alerts = run(det, [spread])
    assert not corr_alerts(alerts)  # 2 per address
    one_ip = [doc_event(T0 + i, "login_failed", source={"ip": "10.0.0.9"}) for i in range(3)]
    _, alerts = run(det, [one_ip])
    (alert,) = corr_alerts(alerts)
    assert alert.facts["group_by"] == ["source.ip"]  # names only: the values are in the (masked) evidence


def test_value_sum_and_avg() -> None:
    det = unit(base("up", "upload", 1),
               correlation("value_sum", ["up"], "        field: source.bytes\n        gt: 1000\n"))
    _, alerts = run(det, [[doc_event(T0 + i, "upload", source={"bytes": 300}) for i in range(3)]])
    assert not corr_alerts(alerts)  # 900
    _, alerts = run(det, [[doc_event(T0 + i, "upload", source={"bytes": 300}) for i in range(4)]])
    assert corr_alerts(alerts)[0].facts["observed"] == 1200
    det = unit(base("up", "upload", 1),
               correlation("value_avg", ["up"], "        field: source.bytes\n        gt: 500\n"))
    _, alerts = run(det, [[doc_event(T0, "upload", source={"bytes": 400}), doc_event(T0 + 1, "upload", source={"bytes": 700})]])
    assert corr_alerts(alerts)[0].facts["observed"] == 550


def test_value_percentile_and_median_from_a_sketch() -> None:
    det = unit(base("up", "upload", 1),
               correlation("value_median", ["up"], "        field: source.bytes\n        gt: 1000\n"))
    events = [doc_event(T0 + i, "upload", source={"bytes": b}) for i, b in enumerate([10, 20, 5000, 6000, 7000])]
    _, alerts = run(det, [events])
    (alert,) = corr_alerts(alerts)
    assert alert.facts["observed"] == pytest.approx(5000, rel=0.02)  # the median of the five, within 1%


def test_value_percentile_without_percentile_is_the_share_of_events_with_the_value() -> None:
    """The specification's example: a value seen in at most N % of the group's events (a rarity test)."""
    det = unit(base("proc", "process_start", 1),
               correlation("value_percentile", ["proc"], "        field: process.executable\n        lte: 10\n"))
    common = [doc_event(T0 + i, "process_start", process={"executable": "svchost.exe"}) for i in range(19)]
    _, alerts = run(det, [common])
    assert not corr_alerts(alerts)
    rare = doc_event(T0 + 30, "process_start", process={"executable": "x.exe"})
    state, alerts = run(det, [[*common, rare]])
    (alert,) = corr_alerts(alerts)
    assert alert.facts["observed"] == 5.0 and alert.evidence_event_ids == (rare.id,)  # 1 of 20
    buckets = next(iter(state["c"].values()))["-"]["b"]
    assert len({h for b in buckets for h in b[2]}) == 2  # counts per bucket and value digest, not events
    assert sum(b[1] for b in buckets) == 20


def test_temporal_needs_every_rule_in_the_window() -> None:
    det = unit(base("a", "act_a", 1), base("b", "act_b", 2), correlation("temporal", ["a", "b"]))
    _, alerts = run(det, [[doc_event(T0, "act_a"), doc_event(T0 + 3600, "act_b")]])
    assert not corr_alerts(alerts)
    _, alerts = run(det, [[doc_event(T0, "act_b"), doc_event(T0 + 60, "act_a")]])
    assert corr_alerts(alerts)  # any order


def test_temporal_ordered_needs_the_order() -> None:
    det = unit(base("a", "act_a", 1), base("b", "act_b", 2), base("c", "act_c", 3),
               correlation("temporal_ordered", ["a", "b", "c"]))
    _, alerts = run(det, [[doc_event(T0, "act_b"), doc_event(T0 + 1, "act_a"), doc_event(T0 + 2, "act_c")]])
    assert not corr_alerts(alerts)
    _, alerts = run(det, [[doc_event(T0, "act_a"), doc_event(T0 + 1, "act_b"), doc_event(T0 + 2, "act_c")]])
    assert corr_alerts(alerts)
    _, alerts = run(det, [[doc_event(T0, "act_a"), doc_event(T0 + 1, "act_b"), doc_event(T0 + 1200, "act_c")]])
    assert not corr_alerts(alerts)  # beyond the 10 minutes


def test_extended_temporal_condition() -> None:
    text = correlation("temporal", ["a", "b"]).replace("    rules:\n        - a\n        - b\n", "") + \
        "    condition: a and not b\n"
    det = unit(base("a", "act_a", 1), base("b", "act_b", 2), text)
    _, alerts = run(det, [[doc_event(T0, "act_a")]])
    assert corr_alerts(alerts)
    _, alerts = run(det, [[doc_event(T0, "act_b"), doc_event(T0 + 1, "act_a")]])
    assert not corr_alerts(alerts)


@pytest.mark.parametrize(("text", "reason"), [
    (correlation("event_count", ["zzz"], "        gte: 3\n"), "referenced rule not loaded"),
])
def test_correlations_refused_with_reason(text: str, reason: str) -> None:
    rs = ruleset(base("a", "act_a", 1), text)
    assert [r.reason for r in rs.refused] == [reason]
    assert "bbbbbbbb" in rs.refused[0].message()


def test_a_correlation_of_a_correlation_is_refused() -> None:
    inner = correlation("event_count", ["a"], "        gte: 3\n")
    outer = correlation("event_count", ["bbbbbbbb-0000-4000-8000-000000000001"], "        gte: 2\n").replace(
        "bbbbbbbb-0000-4000-8000-000000000001\nlevel", "cccccccc-0000-4000-8000-000000000001\nlevel")
    rs = ruleset(base("a", "act_a", 1), inner, outer)
    assert len(rs.correlations) == 1
    (refusal,) = rs.refused
    assert refusal.reason == "unsupported correlation" and "correlations of correlations" in refusal.feature


def test_state_expires_after_the_timespan_and_grace() -> None:
    det = unit(base("a", "act_a", 1), correlation("event_count", ["a"], "        gte: 100\n"),
               config=SigmaConfig(grace_s=60))
    state, _ = run(det, [[doc_event(T0, "act_a")]])
    assert state and "c" in state
    state, _ = run(det, [[doc_event(T0 + 10_000, "other")]], state)
    assert state is None or "c" not in state


# -- batching invariance ------------------------------------------------------------------------------

RULES = [
    base("a", "act_a", 1), base("b", "act_b", 2), base("c", "act_c", 3),
    correlation("event_count", ["a"], "        gte: 3\n"),
]
KINDS = {
    "event_count": correlation("event_count", ["a", "b"], "        gte: 3\n"),
    "value_count": correlation("value_count", ["a"], "        field: custodes.object.id\n        gte: 3\n"),
    "value_sum": correlation("value_sum", ["b"], "        field: source.bytes\n        gt: 100\n"),
    "value_avg": correlation("value_avg", ["b"], "        field: source.bytes\n        gte: 40\n"),
    "value_median": correlation("value_median", ["b"], "        field: source.bytes\n        gte: 40\n"),
    "value_share": correlation("value_percentile", ["a", "b"], "        field: custodes.object.id\n        lte: 30\n"),
    "temporal": correlation("temporal", ["a", "b", "c"]),
    "temporal_ordered": correlation("temporal_ordered", ["a", "b", "c"]),
}

event_strategy = st.tuples(
    st.integers(0, 240),  # seconds after the previous event's time...
    st.sampled_from(["act_a", "act_b", "act_c", "other"]),
    st.integers(0, 4),  # object id
    st.integers(0, 80),  # bytes
    st.integers(0, 500),  # ...minus this: late events, within grace_s (600; beyond it see docs/detectors.md)
)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), raw=st.lists(event_strategy, min_size=1, max_size=40),
       sizes=st.lists(st.integers(1, 7), min_size=1, max_size=10))
def test_same_alerts_however_the_stream_is_cut(kind: str, raw: list, sizes: list) -> None:
    det = unit(base("a", "act_a", 1), base("b", "act_b", 2), base("c", "act_c", 3), KINDS[kind],
               config=SigmaConfig(grace_s=600, suppress_s=300))
    events, clock = [], T0
    for i, (step, action, o, b, late) in enumerate(raw):
        clock += step
        events.append(doc_event(clock - late, action, custodes={"object": {"id": f"d{o}"}}, source={"bytes": b},
                                id=f"e{i}"))
    whole = counts(run(det, [events])[1])
    assert counts(run(det, one_by_one(events))[1]) == whole
    assert counts(run(det, cut(events, sizes))[1]) == whole
