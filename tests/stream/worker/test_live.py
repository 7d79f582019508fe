"""Live states between micro-batches (stream/worker/live.py): decoded states kept and used only while
the store holds the bytes they were encoded to; bounded by bytes; never left half-updated; the same
alerts and states as decoding every time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.registry import build
from stream.contract.settings import load
from stream.worker.delivery import deliver
from stream.worker.live import OBJECT_BYTES_PER_BYTE, LiveStates
from stream.worker.pipeline import Pipeline
from stream.worker.step import BatchOutcome, StateWrite, gather, run_batch

from ..events import T0, export, lines
from .test_delivery import FakeOutput

NOW = T0 + 3600
CODES = {"events": "e", "rerouted": "r"}


class Message(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


def _pipeline(tmp_path: Any) -> Pipeline:
    s = load(env={"CUSTODES_DATA_DIR": str(tmp_path)})
    return Pipeline(s, build(s.detectors), clock=lambda: NOW)


@pytest.fixture
def pipeline(tmp_path):
    return _pipeline(tmp_path)


def _home(user: str) -> int:
    return 0


def _run(pipeline: Pipeline, messages: Sequence[Message], states: dict[bytes, bytes],
         live: LiveStates | None) -> BatchOutcome:
    outcome = run_batch(pipeline, states.get, gather(pipeline, messages, CODES, _home), live=live)
    _store(states, outcome.new_states)
    return outcome


def _store(states: dict[bytes, bytes], writes: Sequence[StateWrite]) -> None:
    for key, _old, new in writes:
        if new is None:
            states.pop(key, None)
        else:
            states[key] = new


def _alerts(outcome: BatchOutcome) -> list[tuple[bytes, str, int]]:
    return [(key, alert.id, alert.count) for key, alert in outcome.alerts]


def _messages(n: int, users: int = 3, first: int = 0) -> list[Message]:
    return [Message("events", 0, i, lines(export(f"u{i % users}", T0 + 30 * i, 40 + i % 7, event_id=f"e{i}")))
            for i in range(first, first + n)]


# -- the cache itself ---------------------------------------------------------------------------


def test_an_entry_is_used_only_for_the_bytes_it_was_encoded_to():
    live = LiveStates(1 << 20)
    data, obj = b'{"d":{"n":1}}', {"d": {"n": 1}}
    live.put(b"k", data, obj)
    assert live.take(b"k", data) is obj and live.hits == 1  # the very bytes
    assert b"k" not in live  # taken out: the caller's until put back
    live.put(b"k", data, obj)
    assert live.take(b"k", bytes(bytearray(data))) is obj  # equal bytes (recovered from the changelog)
    live.put(b"k", data, obj)
    assert live.take(b"k", b'{"d":{"n":0}}') is None and live.stale == 1  # the store holds other bytes
    assert b"k" not in live and live.bytes == 0
    live.put(b"k", data, obj)
    assert live.take(b"k", None) is None  # deleted from the store
    assert live.take(b"other", b"{}") is None and live.misses == 2
    assert live.take(b"new", None) is None and live.misses == 2  # no state at all is not a miss


def test_the_bound_evicts_the_least_recently_used_and_counts_objects_not_shared_bytes():
    value = b"x" * 100
    cost = len(value) * OBJECT_BYTES_PER_BYTE
    live = LiveStates(3 * cost)
    for key in (b"a", b"b", b"c"):
        live.put(key, value, {})
    assert len(live) == 3 and live.bytes == 3 * cost
    assert live.take(b"a", value) is not None  # a used again: now the most recent
    live.put(b"a", value, {})
    live.put(b"d", value, {})
    assert [k for k in (b"a", b"b", b"c", b"d") if k in live] == [b"a", b"c", b"d"] and live.evicted == 1
    assert live.bytes == 3 * cost <= live.max_bytes
    live.put(b"big", b"y" * 400, {})  # larger than the whole bound: not kept, nothing evicted for it
    assert b"big" not in live and len(live) == 3
    live.put(b"c", b"z" * 50, {})  # a key put again replaces its entry
    assert live.bytes == 2 * cost + 50 * OBJECT_BYTES_PER_BYTE
    live.discard([b"c", b"nothing"])
    assert b"c" not in live and live.bytes == 2 * cost
    assert LiveStates(0).put(b"a", value, {}) is None and len(LiveStates(0)) == 0


def test_a_rebalance_drops_the_entries_of_the_partitions_named():
    live = LiveStates(1 << 20)
    for key in (b"p0-a", b"p1-b", b"p2-c", b"p1-d"):
        live.put(key, b"{}", {})
    dropped = live.drop_partitions({1, 3}, lambda key: int(key[1:2]))
    assert dropped == 2 and sorted(k for k in (b"p0-a", b"p1-b", b"p2-c", b"p1-d") if k in live) == [b"p0-a", b"p2-c"]
    assert live.bytes == 2 * 2 * OBJECT_BYTES_PER_BYTE


def test_verify_catches_a_state_that_would_differ_once_decoded():
    live = LiveStates(1 << 20, verify=True)
    live.put(b"ok", b'{"a":[1,2]}', {"a": [1, 2]})
    with pytest.raises(AssertionError, match="differs"):
        live.put(b"tuple", orjson.dumps({"a": (1, 2)}), {"a": (1, 2)})


# -- in the micro-batch step --------------------------------------------------------------------


def test_the_next_micro_batch_uses_the_object_kept_instead_of_decoding(pipeline, monkeypatch):
    live = LiveStates(1 << 20, verify=True)
    states: dict[bytes, bytes] = {}
    _run(pipeline, _messages(3), states, live)
    assert len(live) == 3 and live.hits == 0
    kept = live._entries[b"u0"][1]
    decoded = []
    real_loads = orjson.loads
    stored = set(states.values())
    monkeypatch.setattr(orjson, "loads", lambda b: decoded.append(b in stored) or real_loads(b))
    _run(pipeline, _messages(3, first=3), states, live)
    assert live.hits == 3 and decoded and not any(decoded)  # events decoded, no stored state
    assert live._entries[b"u0"][1] is kept  # the same object, updated in place
    assert live._entries[b"u0"][0] is states[b"u0"]  # ...beside the very bytes the store now holds


def test_a_failed_delivery_falls_back_to_the_stored_bytes(pipeline):
    """The micro-batch ran (its new state put in the cache) but delivery failed: the store still holds
    the old state. Its messages, delivered again, must run against the old state, not be taken for
    already applied by the object kept."""

    class Store(FakeOutput):
        def __init__(self, states: dict[bytes, bytes], **kw: Any) -> None:
            super().__init__(**kw)
            self.states = states

        async def write_states(self, writes: Sequence[StateWrite]) -> None:
            await super().write_states(writes)
            _store(self.states, writes)

    def deliver_batch(messages: list[Message], states: dict[bytes, bytes], live: LiveStates | None,
                      **fail: Any) -> BatchOutcome:
        outcome = run_batch(pipeline, states.get, gather(pipeline, messages, CODES, _home), live=live)
        asyncio.run(deliver(outcome, Store(states, **fail), dead_letter_max_bytes=1000))
        return outcome

    first = [Message("events", 0, 1, lines(export("alice", T0, 150, event_id="a1")))]
    second = [Message("events", 0, 2, lines(export("alice", T0 + 60, 150, event_id="a2")))]
    for failure in ({"fail_send": "alerts"}, {"fail_states": True}):
        live = LiveStates(1 << 20)
        states: dict[bytes, bytes] = {}
        deliver_batch(first, states, live)
        stored = states[b"alice"]
        with pytest.raises(Exception):  # noqa: B017 - the fake broker's timeout
            deliver_batch(second, states, live, **failure)
        assert states[b"alice"] is stored and b"alice" in live  # the cache is ahead of the store
        again = deliver_batch(second, states, live)
        # the same outcome as decoding the stored state
        reference = run_batch(pipeline, {b"alice": stored}.get, gather(pipeline, second, CODES, _home))
        assert again.counts.redelivered == 0 and live.stale == 1
        assert _alerts(again) == _alerts(reference) and again.alerts
        assert again.new_states == reference.new_states


def test_an_exception_part_way_leaves_no_object_in_the_cache(pipeline, monkeypatch):
    live = LiveStates(1 << 20)
    states: dict[bytes, bytes] = {}
    _run(pipeline, _messages(3), states, live)
    before = dict(states)
    real_run = pipeline.engine.run

    def half_then_fail(subject: str, events: Any, state: Any, **kw: Any) -> Any:
        real_run(subject, events, state, **kw)  # the state is updated in place...
        raise RuntimeError("then something fails")

    monkeypatch.setattr(pipeline.engine, "run", half_then_fail)
    with pytest.raises(RuntimeError):
        _run(pipeline, _messages(3, first=3), states, live)
    assert b"u0" not in live and states == before  # the half-updated object is gone
    monkeypatch.undo()
    redone = _run(pipeline, _messages(3, first=3), states, live)
    reference = _run(pipeline, _messages(3, first=3), dict(before), None)
    assert _alerts(redone) == _alerts(reference)
    assert [(k, n) for k, _o, n in redone.new_states] == [(k, n) for k, _o, n in reference.new_states]


def test_a_failing_detector_restarts_from_the_stored_state_with_or_without_the_cache(tmp_path, monkeypatch):
    from detectors.bulk_export.detector import BulkExport

    real = BulkExport.process

    def fails_on_13(self, subject, events, state, clock):
        out = real(self, subject, events, state, clock)  # the state updated in place, then it fails
        if any(ev.record_count == 13 for ev in events):
            raise ValueError("13")
        return out

    monkeypatch.setattr(BulkExport, "process", fails_on_13)
    counts = [40, 60, 13, 80, 13, 70, 90]
    messages = [Message("events", 0, i, lines(export("alice", T0 + 60 * i, c, event_id=f"e{i}")))
                for i, c in enumerate(counts)]
    results = []
    for live in (None, LiveStates(1 << 20, verify=True)):
        pipeline = _pipeline(tmp_path)
        states: dict[bytes, bytes] = {}
        outcomes = [_run(pipeline, messages[i:i + 2], states, live) for i in range(0, len(messages), 2)]
        results.append(([a for o in outcomes for a in _alerts(o)],
                         [d.reason for o in outcomes for d in o.dead_letters], states))
    assert results[0] == results[1]
    assert results[0][1] == ["detector_failed", "detector_failed"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=12),
       bound=st.sampled_from([0, 3000 * OBJECT_BYTES_PER_BYTE, 1 << 20]),
       redeliver=st.booleans())
def test_the_same_alerts_and_states_with_and_without_the_cache(pipeline, cuts, bound, redeliver):
    messages = _messages(30, users=5)
    batches: list[list[Message]] = []
    start = 0
    while start < len(messages):
        size = cuts[len(batches) % len(cuts)]
        batches.append(messages[start:start + size])
        if redeliver and len(batches) % 3 == 0:
            batches.append(messages[max(0, start - 2):start + size])  # a redelivery after a crash
        start += size
    runs = []
    for live in (None, LiveStates(bound, verify=True)):
        states: dict[bytes, bytes] = {}
        alerts = [a for batch in batches for a in _alerts(_run(pipeline, batch, states, live))]
        runs.append((alerts, states))
    assert runs[0] == runs[1]  # the stored bytes too


def test_replay_keeps_live_states_and_gives_the_same_alerts_on_every_detector(tmp_path, monkeypatch):
    """The replay workload (every kind of event, every detector), cut into small micro-batches, with
    the cache checked against its bytes on every put (a detector keeping a tuple or a NaN would fail)."""
    from bench.replay import chunks, make_lines
    from stream.offline.replay import ReplayResult, run_messages

    monkeypatch.setattr("stream.offline.replay.LiveStates", lambda n: LiveStates(n, verify=True))
    now = T0 + 86400
    messages = chunks(make_lines(6000, 60, now, seed=3), size=100)
    results = []
    for bound in (0, 1 << 24):
        s = load(env={"CUSTODES_DATA_DIR": str(tmp_path), "CUSTODES_BATCH_MAX_EVENTS": "700",
                      "CUSTODES_LIVE_STATE_MAX_BYTES": str(bound)})
        pipeline = Pipeline(s, build(s.detectors), clock=lambda: now)
        result = run_messages(pipeline, (ReplayResult(), iter(messages)))
        results.append(sorted((a.id, a.count, a.score) for a in result.alerts.values()))
    assert results[0] == results[1] and len(results[0]) > 10


def test_the_worker_drops_the_live_states_of_partitions_revoked_or_assigned():
    from faust.types import TP

    from stream.contract.partitioning import home_partition
    from stream.worker.app import create_app

    settings = load(env={"CUSTODES_BROKER": "127.0.0.1:9", "CUSTODES_WORKER_PORT": "0",
                         "CUSTODES_LIVE_STATE_MAX_BYTES": str(1 << 20)})
    app = create_app(settings)
    live = app.custodes_runner.live
    assert live.max_bytes == 1 << 20
    people = [f"person{i}".encode() for i in range(40)]
    on = {p: home_partition(p.decode(), settings.partitions) for p in people}
    events = settings.topics.events

    def fill() -> None:
        for p in people:
            live.put(p, b"{}", {})

    fill()
    asyncio.run(app.on_partitions_revoked.send({TP(events, 1), TP(events, 2)}))
    assert sorted(p for p in people if p in live) == sorted(p for p in people if on[p] not in (1, 2))
    fill()
    asyncio.run(app.on_partitions_assigned.send({TP(events, 0)}))
    assert sorted(p for p in people if p in live) == sorted(p for p in people if on[p] != 0)
    assert {on[p] for p in people} == set(range(settings.partitions))  # every partition had people
