"""The micro-batch as a pure step (stream/worker/step.py): what run_batch returns for a batch of
messages against stored states, without Kafka."""

from __future__ import annotations

from typing import NamedTuple

import orjson
import pytest

from detectors.registry import build
from stream.contract.settings import load
from stream.worker.pipeline import Pipeline
from stream.worker.step import BatchOutcome, gather, run_batch, sweep

from ..events import T0, export, lines

NOW = T0 + 3600
CODES = {"events": "e", "rerouted": "r"}


class Message(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


@pytest.fixture
def pipeline(tmp_path):
    settings = load(env={"CUSTODES_DATA_DIR": str(tmp_path)})
    return Pipeline(settings, build(settings.detectors), clock=lambda: NOW)


def _home(user: str) -> int:
    return 0


def _run(pipeline: Pipeline, messages: list[Message], states: dict[bytes, bytes]) -> BatchOutcome:
    outcome = run_batch(pipeline, states.get, gather(pipeline, messages, CODES, _home))
    for key, _old, new in outcome.new_states:
        if new is None:
            states.pop(key, None)
        else:
            states[key] = new
    return outcome


def test_a_batch_gives_alerts_states_dead_letters_and_counts(pipeline):
    states: dict[bytes, bytes] = {}
    outcome = _run(pipeline, [
        Message("events", 0, 1, lines(export("alice", T0, 150, event_id="a1"), b"{not json")),
        Message("events", 0, 2, lines(export("alice", T0 + 60, 100, event_id="a2"),
                                      export("bob", T0, 5, event_id="b1"),
                                      export("carol", T0 - 3 * 365 * 86400, 5, event_id="c1"))),
    ], states)
    assert [(key, alert.detector, alert.count) for key, alert in outcome.alerts] == [(b"alice", "bulk_export", 1)]
    assert sorted(key for key, old, new in outcome.new_states) == [b"alice", b"bob"]
    assert all(old is None and new is not None for _, old, new in outcome.new_states)
    assert [(d.reason, d.offset, d.line) for d in outcome.dead_letters] == [("invalid_json", 1, 2)]
    counts = outcome.counts
    # consumed = processed + dead-lettered + expired
    assert counts.consumed == {"events": 5}
    assert sum(counts.processed.values()) == 3 and counts.processed["export"] == 3
    assert counts.expired == 1 and counts.redelivered == 0 and counts.duplicates == 0
    assert counts.newest_ts == T0 + 60


def test_each_user_state_is_read_once_and_only_changed_states_are_written(pipeline):
    reads: list[bytes] = []
    states: dict[bytes, bytes] = {}
    first = [Message("events", 0, 1, lines(export("alice", T0, 10, event_id="a1")))]
    _run(pipeline, first, states)

    def read(key: bytes) -> bytes | None:
        reads.append(key)
        return states.get(key)

    batch = gather(pipeline, first + [Message("events", 0, 2, lines(export("alice", T0 + 1, 10, event_id="a2")))],
                   CODES, _home)
    outcome = run_batch(pipeline, read, batch)
    assert reads == [b"alice"]
    assert outcome.counts.redelivered == 1  # offset 1 again: already applied
    assert [key for key, _, _ in outcome.new_states] == [b"alice"]
    again = run_batch(pipeline, states.get, gather(pipeline, first, CODES, _home))
    assert again.new_states == [] and again.alerts == [] and again.counts.redelivered == 1


def test_the_same_events_cut_into_other_batches_give_the_same_alerts(pipeline):
    messages = [Message("events", 0, i, lines(export(f"u{i % 3}", T0 + i, 40, event_id=f"e{i}"))) for i in range(30)]
    whole: dict[bytes, bytes] = {}
    alerts_whole = [(k, a.id, a.count) for k, a in _run(pipeline, messages, whole).alerts]
    cut: dict[bytes, bytes] = {}
    alerts_cut = []
    for start in range(0, 30, 7):
        alerts_cut += [(k, a.id, a.count) for k, a in _run(pipeline, messages[start:start + 7], cut).alerts]
    assert whole.keys() == cut.keys()  # (a state keeps its last alert's wording, which depends on the cut)
    final = {}
    for key, alert_id, count in alerts_cut:
        final[(key, alert_id)] = max(count, final.get((key, alert_id), 0))
    assert {(k, i): c for k, i, c in alerts_whole} == final


def test_events_off_their_home_partition_are_to_be_rekeyed_with_their_origin(pipeline):
    batch = gather(pipeline, [Message("events", 1, 7, lines(export("alice", T0, 1)))], CODES, _home)
    outcome = run_batch(pipeline, {}.get, batch)
    assert outcome.new_states == [] and outcome.alerts == []
    [(user, line, origin, topic)] = outcome.reroute
    assert (user, origin, topic) == ("alice", b"1:7:1", "events")
    records = list(outcome.records(1000))
    assert [(r.role, r.key, r.headers) for r in records] == [("rerouted", b"alice", [("custodes.origin", b"1:7:1")])]
    assert records[0].refused.reason == "unroutable" and records[0].refused.offset == 7
    # the re-keyed copy is positioned where it came from: its redelivery is recognised
    rekeyed = Message("rerouted", 0, 3, line, [("custodes.origin", origin)])
    states: dict[bytes, bytes] = {}
    _run(pipeline, [rekeyed], states)
    copy = _run(pipeline, [rekeyed._replace(offset=4)], states)
    assert copy.counts.redelivered == 1 and copy.new_states == []


def test_records_carry_alerts_and_cut_dead_letters(pipeline):
    outcome = _run(pipeline, [Message("events", 0, 1, lines(export("alice", T0, 250, event_id="a1"),
                                                            b"x" * 50))], {})
    records = list(outcome.records(10))
    assert [r.role for r in records] == ["alerts", "dead_letter", "activity_days"]
    alert = orjson.loads(records[0].value)
    assert alert["detector"] == "bulk_export" and records[0].key == b"alice"
    assert records[1].value == b"x" * 10 and ("custodes.truncated", b"50") in records[1].headers
    day = orjson.loads(records[2].value)  # the person's day, absolute counts (the person story)
    assert records[2].key == b"alice" and day["person"] == "alice" and sum(day["counts"].values()) == 1


def test_sweep_deletes_states_past_the_window_and_keeps_the_rest(pipeline):
    states: dict[bytes, bytes] = {}
    _run(pipeline, [Message("events", 0, 1, lines(export("alice", T0, 1, event_id="a1"),
                                                  export("bob", T0, 1, event_id="b1")))], states)
    outcome = sweep(pipeline, list(states.items()), NOW)
    assert outcome.new_states == [] and outcome.counts.state_expired == 0
    later = T0 + pipeline.settings.retention_s + 10
    outcome = sweep(pipeline, list(states.items()), later)
    assert sorted((key, new) for key, _, new in outcome.new_states) == [(b"alice", None), (b"bob", None)]
    assert outcome.counts.state_expired == 2
