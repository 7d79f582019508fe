# ruff: noqa: E501 - rule texts and event rows read best one a line
"""Correlations grouped by something other than the person: the person pass emits records, the group
stage counts them across people (attribution, bounded state, lateness, redelivery, expiry)."""

from __future__ import annotations

from typing import Any

from detectors.sigma import SigmaConfig, SigmaRules
from detectors.sigma.grouped import MAX_PERSONS, GroupConfig, GroupStage, group_key, stale

from ..helpers import T0
from .helpers import ruleset
from .test_correlate import base, correlation, doc_event

CORR = "bbbbbbbb-0000-4000-8000-000000000001"


def emit(unit: SigmaRules, events: list[Any]) -> list[dict[str, Any]]:
    """The person pass, one person's events at a time: the records it emits."""
    out = []
    for e in events:
        unit.process(e.user_id, [e], None, lambda t=e.ts: t)
        out.extend(r for _, r in unit.take_records())
    return out


def count(stage: GroupStage, records: list[dict[str, Any]], states: dict | None = None,
          at: bool = False) -> tuple[dict, dict]:
    states = {} if states is None else states
    alerts: dict = {}
    for i, r in enumerate(records):
        key = group_key(r)
        st, got = stage.apply([(dict(r), ["o", i] if at else None)], states.get(key))
        if st is None:
            states.pop(key, None)
        else:
            states[key] = st
        for a in got:
            alerts[a.id] = a
    return states, alerts


def failed_logons(group: str = "source.ip", gte: int = 3, timespan: str = "10m") -> Any:
    return ruleset(base("a", "login_failed", 1),
                   correlation("event_count", ["a"], f"        gte: {gte}\n", group=group, timespan=timespan))


def test_counted_across_people_and_attributed_to_who_completed_it() -> None:
    rs = failed_logons()
    (corr,) = rs.correlations
    assert corr.grouped and corr.group_by == (("source.ip",),)
    unit = SigmaRules(rs, SigmaConfig())
    events = [doc_event(T0 + i * 10, "login_failed", user=f"pc-{i}", source={"ip": "10.0.0.1"}) for i in range(4)]
    events.append(doc_event(T0 + 50, "login_failed", user="pc-9", source={"ip": "10.0.0.2"}))
    records = emit(unit, events)
    assert len(records) == 5 and all(r["c"] == CORR for r in records)
    # the person pass itself raises nothing and keeps no correlation state for a grouped rule
    state, alerts = unit.process("pc-0", [events[0]], None, lambda: T0)
    assert not alerts and not (state or {}).get("c")
    unit.take_records()
    _, alerts = count(GroupStage(rs), records)
    (alert,) = alerts.values()
    assert alert.subject == "pc-2"  # the third failed logon from 10.0.0.1 met the condition
    assert alert.count == 2 and alert.facts["observed"] == 4
    assert alert.facts["grouped"] is True and alert.facts["persons_count"] == 4
    assert alert.facts["group_by"] == ["source.ip"]
    # the group's value and the people are masked facts, never plain text
    assert alert.facts["masked"] == {"group": "10.0.0.1", "persons": ["pc-3", "pc-2", "pc-1", "pc-0"]}
    assert "10.0.0.1" not in alert.explanation and "{group}" in alert.explanation
    assert list(alert.evidence_event_ids) == [events[2].id, events[3].id]
    assert alert.evidence[-1]["id"] == events[3].id


def test_the_group_key_holds_no_value_and_persons_are_bounded() -> None:
    rs = failed_logons(gte=1000)
    unit = SigmaRules(rs, SigmaConfig())
    records = emit(unit, [doc_event(T0 + i, "login_failed", user=f"pc-{i}", source={"ip": "10.9.9.9"}) for i in range(40)])
    key = group_key(records[0])
    assert "10.9.9.9" not in key and key.startswith(CORR)
    states, _ = count(GroupStage(rs), records)
    st = states[key]
    assert len(st["p"]) == MAX_PERSONS and "pc-39" in st["p"]
    assert sum(n for _, n in st["c"]["b"]) == 40  # counts, not events


def test_without_group_by_everyone_is_one_group() -> None:
    rs = ruleset(base("a", "login_failed", 1), correlation("event_count", ["a"], "        gte: 3\n", group="").replace(
        "    group-by:\n        - \n", ""))
    assert not rs.refused and rs.correlations[0].grouped
    unit = SigmaRules(rs, SigmaConfig())
    records = emit(unit, [doc_event(T0 + i, "login_failed", user=f"pc-{i}") for i in range(3)])
    assert len({group_key(r) for r in records}) == 1
    _, alerts = count(GroupStage(rs), records)
    (alert,) = alerts.values()
    assert "Across everyone" in alert.explanation and "group" not in alert.facts["masked"]


def test_a_redelivered_record_is_not_counted_twice() -> None:
    rs = failed_logons(gte=3)
    unit = SigmaRules(rs, SigmaConfig())
    records = emit(unit, [doc_event(T0 + i, "login_failed", user=f"pc-{i}", source={"ip": "10.0.0.1"}) for i in range(2)])
    stage = GroupStage(rs)
    st, _ = stage.apply([(dict(r), ["p0", 0, i]) for i, r in enumerate(records)], None)
    st, alerts = stage.apply([(dict(r), ["p0", 0, i]) for i, r in enumerate(records)], st)  # after a crash
    assert not alerts
    assert sum(n for _, n in st["c"]["b"]) == 2


def test_late_records_are_not_counted_and_state_expires() -> None:
    rs = failed_logons(gte=2)
    unit = SigmaRules(rs, SigmaConfig())
    stage = GroupStage(rs, GroupConfig(grace_s=60, suppress_s=60))
    records = emit(unit, [doc_event(T0 + 1000, "login_failed", user="pc-1", source={"ip": "10.0.0.1"}),
                          doc_event(T0, "login_failed", user="pc-2", source={"ip": "10.0.0.1"})])
    states, alerts = count(stage, records)
    assert not alerts  # the second is 1000 s older than the group's newest: beyond grace
    (st,) = states.values()
    assert stale(st, T0 + 1000 + 600 + 60 + 60) and not stale(st, T0 + 1000)
    later = emit(unit, [doc_event(T0 + 10_000, "login_failed", user="pc-3", source={"ip": "10.0.0.1"})])
    states, _ = count(stage, later, states)
    assert sum(n for _, n in next(iter(states.values()))["c"]["b"]) == 1  # the old counts expired


def test_a_removed_rule_counts_nothing() -> None:
    rs = failed_logons(gte=1)
    unit = SigmaRules(rs, SigmaConfig())
    records = emit(unit, [doc_event(T0, "login_failed", user="pc-1", source={"ip": "10.0.0.1"})])
    _, alerts = count(GroupStage(ruleset(base("a", "login_failed", 1))), records)
    assert not alerts


def test_group_by_mixing_person_and_not_through_aliases_is_refused() -> None:
    text = correlation("event_count", ["a", "b"], "        gte: 3\n", group="who") + \
        "    aliases:\n        who:\n            a: user.id\n            b: source.ip\n"
    rs = ruleset(base("a", "act_a", 1), base("b", "act_b", 2), text)
    (refusal,) = rs.refused
    assert refusal.reason == "unsupported correlation" and "person for some" in refusal.feature
