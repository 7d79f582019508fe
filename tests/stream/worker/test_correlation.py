"""Grouped Sigma correlations in ``custodes replay``: the Sigma specification's correlation examples
run (those grouped by computer, DNS name or workstation counted across people), and the same alerts
come out however the messages are cut into micro-batches (hypothesis)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.reference import ReferenceHolder
from detectors.sigma import SigmaRules
from stream.contract.settings import Rules
from stream.contract.settings import load as load_settings
from stream.detection.rules import load, sigma_config
from stream.offline.replay import ReplayResult, run_messages
from stream.worker.correlation import GroupedCorrelations, InMemoryGroups
from stream.worker.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "tests" / "data" / "sigma" / "specification"
T0 = 1_793_000_000.0  # 2026-10-26


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def pipeline_for(rules: Rules, batch: int) -> Pipeline:
    settings = load_settings(ROOT / "config" / "custodes.toml", env={}).model_copy(
        update={"batch_max_events": batch, "rules": rules, "dedupe_events": 0})
    unit = SigmaRules(load(rules).rules, sigma_config(rules), ReferenceHolder())
    return Pipeline(settings, [unit], lambda: T0 + 86_400)


def replay(rules: Rules, messages: list[bytes], batch: int) -> ReplayResult:
    return run_messages(pipeline_for(rules, batch), (ReplayResult(), iter(messages)))


def lines(docs: list[dict]) -> Iterator[bytes]:
    for d in docs:
        yield orjson.dumps(d)


def test_every_specification_correlation_example_runs() -> None:
    rules = Rules(dir=SPEC, pipeline=ROOT / "config" / "sigma-pipeline.yml")
    loaded = load(rules)
    assert len(loaded.rules.correlations) == 8 and not loaded.refused
    docs = []
    # 100 failed logons by 100 people on one computer, workstation and DNS name: the three examples
    # grouped without the person (event_count by ComputerName, by dns.question.name; value_count of
    # User by ComputerName and WorkstationName)
    for i in range(100):
        docs.append({"@timestamp": iso(T0 + i * 10), "user": {"id": f"pc-{i:03d}"}, "event": {
            "id": f"f{i}", "action": "logon", "outcome": "failure"}, "host": {"name": "ws-17"},
            "source": {"domain": "WS17"}, "dns": {"question": {"name": "dc1.force.example"}}})
    # one person: recon commands in order (temporal, temporal_ordered), uploads (value_avg) and web
    # access (value_sum), grouped by the person and the computer or address
    for i, name in enumerate(["whoami", "net", "nltest"]):
        docs.append({"@timestamp": iso(T0 + 2000 + i), "user": {"id": "pc-500"}, "event": {"id": f"r{i}"},
                     "host": {"name": "ws-2"}, "process": {"name": name}})
    for i in range(3):
        docs.append({"@timestamp": iso(T0 + 2100 + i), "user": {"id": "pc-500"},
                     "event": {"id": f"u{i}", "action": "upload"}, "source": {"ip": "10.1.1.1", "bytes": 700_000},
                     "url": {"domain": "paste.example"}})
    # value_percentile (the specification's reading: a process image seen in at most 1 % of the
    # computer's process creations within 24 h): 120 creations of one image, then a rare one (in a
    # message of its own: within one message the records are counted person by person)
    for i in range(121):
        image = "C:\\Windows\\System32\\svchost.exe" if i < 120 else "C:\\Users\\Public\\x.exe"
        docs.append({"@timestamp": iso(T0 + 3000 + i), "user": {"id": f"pc-{600 + i % 3}"},
                     "event": {"id": f"p{i}"}, "host": {"name": "ws-9"}, "process": {"executable": image}})
    body = docs[:-1]
    messages = [b"\n".join(lines(body[i:i + 7])) for i in range(0, len(body), 7)] + [b"".join(lines(docs[-1:]))]
    got = {}
    for batch in (1, 20, 10_000):
        result = replay(rules, messages, batch)
        got[batch] = sorted((a.id, a.subject, a.facts["rule_title"], a.facts.get("grouped", False), a.count)
                            for a in result.alerts.values())
    assert got[1] == got[20] == got[10_000]
    titles = sorted((title, grouped) for _, _, title, grouped, _ in got[1])
    assert titles == [
        ("A computer spawned a processes name in the last 24h than 1% of all the processes.", True),
        ("Failed login", True),  # value_count: 100 distinct users on ws-17 / WS17
        ("Many failed logins", True), ("Many failed logins", True),  # event_count by computer, by DNS name
        ("Possible Exfiltration to Website", False),  # value_sum > 1,000,000 bytes
        ("Recon", False), ("Recon ordered", False),
        ("Suspicious average network traffic", False),  # value_avg > 500
    ]
    grouped = {title: subject for _, subject, title, is_grouped, _ in got[1] if is_grouped}
    assert grouped["Many failed logins"] == grouped["Failed login"] == "pc-099"  # who completed the hundred
    rare = next(a for a in replay(rules, messages, 50).alerts.values() if a.facts["correlation"] == "value_percentile")
    assert rare.subject == "pc-600" and rare.count == 1  # the rare image: 1 of 121, 0.8 %
    assert rare.facts["observed"] == pytest.approx(100 / 121)


RULES = """title: failed logon
id: aaaaaaaa-0000-4000-8000-000000000001
name: failed
logsource:
    product: custodes
detection:
    sel:
        event.action: logon
        event.outcome: failure
    condition: sel
level: low
---
title: many failed logons on one computer
id: bbbbbbbb-0000-4000-8000-000000000001
correlation:
    type: event_count
    rules: [failed]
    group-by: [host.name]
    timespan: 5m
    condition:
        gte: 3
level: high
---
title: many people failing on one computer
id: bbbbbbbb-0000-4000-8000-000000000002
correlation:
    type: value_count
    rules: [failed]
    group-by: [host.name]
    timespan: 5m
    condition:
        field: user.id
        gte: 2
level: high
"""


@settings(max_examples=40, deadline=None)
@given(raw=st.lists(st.tuples(st.integers(0, 90), st.integers(0, 4), st.integers(0, 2), st.booleans(),
                              st.integers(0, 200)), min_size=1, max_size=40),
       per_message=st.integers(1, 6), batch=st.integers(1, 12))
def test_same_grouped_alerts_however_the_stream_is_cut(tmp_path_factory, raw: list, per_message: int,
                                                       batch: int) -> None:
    directory = tmp_path_factory.mktemp("rules")
    (directory / "rules.yml").write_text(RULES)
    rules = Rules(dir=directory, pipeline=None)
    docs, clock = [], T0
    for i, (step, user, host, failed, late) in enumerate(raw):
        clock += step
        docs.append({"@timestamp": iso(clock - late), "user": {"id": f"pc-{user}"}, "host": {"name": f"ws-{host}"},
                     "event": {"id": f"e{i}", "action": "logon", "outcome": "failure" if failed else "success"}})
    messages = [b"\n".join(lines(docs[i:i + per_message])) for i in range(0, len(docs), per_message)]

    def alerts(size: int) -> list:
        result = replay(rules, messages, size)
        return sorted((a.id, a.subject, a.count) for a in result.alerts.values())

    assert alerts(batch) == alerts(1) == alerts(10_000)


def test_records_carry_their_origin_and_a_redelivery_counts_once(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    rules = Rules(dir=tmp_path, pipeline=None)
    pipeline = pipeline_for(rules, 100)
    groups = InMemoryGroups.for_pipeline(pipeline)
    assert isinstance(groups, GroupedCorrelations)
    docs = [{"@timestamp": iso(T0 + i), "user": {"id": f"pc-{i}"}, "host": {"name": "ws-1"},
             "event": {"id": f"e{i}", "action": "logon", "outcome": "failure"}} for i in range(3)]
    value = b"\n".join(lines(docs))
    from stream.worker.microbatch import MicroBatch

    for _ in range(2):  # the same message twice: a redelivery after a crash
        batch = MicroBatch()
        batch.add(pipeline.split(value, "t", 0, 7), "t", 0, 7, "e")
        for user, segments in batch.users.items():
            pipeline.apply_segments(user, segments, None)  # the person state is lost: records again
            groups.take(segments)
        taken = list(groups.out)
        assert {tuple(at[:2]) for at, _, _ in taken} == {("0:e:0", 7)}
        alerts = groups.run()
    (state,) = [v for k, v in groups.states.items() if k.startswith("bbbbbbbb-0000-4000-8000-000000000001:")]
    assert sum(n for _, n in state["c"]["b"]) == 3
    assert not alerts  # the second pass raised nothing new
