"""Bad input at volume: 20,000 fuzzed records (truncated, wrong types, huge strings, deep nesting,
invalid UTF-8, NaN/Infinity, far-past and far-future times, byte flips, non-objects, missing fields,
and some valid events) through Apache Kafka into the worker.

What it proves: the worker never crashes (still running, /health 200), every record is accounted
for (consumed - rerouted == processed + dead-lettered + expired == 20,000), the dead-letter topic
holds one record per rejected line with a reason from stream.contract.schema.REASONS, and the counts by
reason equal the in-process oracle (the same messages through ``Pipeline``, as replay does). The
worker runs with ``max_event_bytes`` 256 KiB here so lines over the limit (``event_too_large``) still
fit the broker's messages.

The tests without a broker check what the fuzz does to each record: every mutation gets the outcome it
must have (its dead-letter reason, processed, a recognised re-send, expired), in-process, through the
file readers of ``custodes replay``, and for alerts through the sink into SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import pytest

from detectors import registry
from stream.contract.schema import REASONS
from stream.worker.pipeline import Pipeline
from tests.stream.processes import wait_until

from .common import Feeder, Runner, letter_reasons, read_all
from .fuzzgen import MUTATIONS, alert_records, batches, outcomes, per_record, records, sink_outcomes

PARTITIONS = 3
N = 20_000


MAX_EVENT_BYTES = 262_144


@pytest.mark.kafka
def test_fuzzed_records_are_all_accounted_for(kafka_broker, topic_prefix, tmp_path):
    r = Runner(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
               {"partitions": PARTITIONS, "log_level": "warning"})
    text = r.config.read_text()
    assert "max_event_bytes = 1048576" in text
    r.config.write_text(text.replace("max_event_bytes = 1048576", f"max_event_bytes = {MAX_EVENT_BYTES}"))
    try:
        now = time.time()
        fuzzed = list(records(N, now, seed=int(now) % 1000, max_event_bytes=MAX_EVENT_BYTES))
        assert any(f.kind == "too_large" for f in fuzzed)
        lines = [f.raw for f in fuzzed]
        msgs = batches(lines)
        settings = r.settings
        assert settings.event_limits.max_event_bytes == MAX_EVENT_BYTES
        oracle = outcomes(Pipeline(settings, registry.build(settings.detectors), lambda: now), msgs)
        assert oracle["consumed"] == N
        r.start("worker")
        r.wait_ready("worker")
        Feeder(r.bootstrap, settings.topics.events, [(i % PARTITIONS, m) for i, m in enumerate(msgs)],
               seconds=0).start().join()
        wait_until(lambda: r.reconciled(N), 120, message=f"{N} records accounted for")
        assert r.procs["worker"].poll() is None, r.log("worker")
        assert r.health("worker") == 200
        m = r.metrics()
        dead = Counter({dict(k)["reason"]: int(v) for (n, k), v in m.items()
                        if n == "custodes_events_dead_lettered_total" and v})
        assert dead == oracle["dead_lettered"]
        assert r.total("custodes_events_expired_total") == oracle["expired"]
        assert r.total("custodes_events_processed_total") == oracle["processed"]
        raw, _ = letter_reasons(read_all(r.bootstrap, settings.topics.dead_letter))
        assert raw == oracle["dead_lettered"]
        assert set(raw) <= set(REASONS)
        print(f"{N} records in {len(msgs)} messages: processed {oracle['processed']}, expired "
              f"{oracle['expired']}, dead letters {dict(raw)}")
    finally:
        r.stop_all()


def fuzz_pipeline(now: float) -> Pipeline:
    from stream.contract.settings import load

    settings = load()
    return Pipeline(settings, registry.build(settings.detectors), lambda: now)


def test_each_fuzzed_record_gets_the_outcome_its_mutation_must_have():
    now = time.time()
    fuzzed = list(records(N, now, seed=11))
    by_kind, wrong, totals = per_record(fuzz_pipeline(now), fuzzed)
    assert wrong == []
    assert {kind for kind, _ in by_kind} == set(MUTATIONS)
    dead = sum(totals["dead_lettered"].values())
    assert totals["consumed"] == totals["processed"] + dead + totals["expired"] == N
    for reason in ("control_character", "not_utf8", "invalid_json", "too_deeply_nested", "oversized_field",
                   "timestamp_in_future", "missing_user", "missing_timestamp", "bad_timestamp", "not_an_object",
                   "event_too_large"):
        assert totals["dead_lettered"][reason] > 0, reason
    assert totals["duplicates"] > 0
    print(dict(sorted(by_kind.items())))


@pytest.mark.parametrize("kind", [m for m in MUTATIONS if m != "byte_flip"])
def test_each_mutation_alone_gets_its_expected_outcome(kind):
    """Every mutation, 300 times each (too_large included: lines over the limit are event_too_large)."""
    import random

    from .fuzzgen import record

    now = time.time()
    rng = random.Random(kind)
    previous = record(rng, now, 0, kind="valid")
    pipeline = fuzz_pipeline(now)
    if kind == "too_large":  # a smaller limit: 300 lines over the default mebibyte would be slow
        pipeline.limits = dataclasses.replace(pipeline.limits, max_event_bytes=4096)
    limit = pipeline.limits.max_event_bytes
    fuzzed = [previous] + [record(rng, now, i, kind=kind, previous=previous.raw, max_event_bytes=limit)
                           for i in range(1, 301)]
    by_kind, wrong, _ = per_record(pipeline, fuzzed)
    assert wrong == []
    assert sum(n for (k, _), n in by_kind.items() if k == kind) == 300 + (kind == "valid")


def test_fuzzed_files_through_the_readers_give_the_same_outcomes(tmp_path):
    """The same fuzzed records written to a file and read by ``custodes replay`` (stream/sources/
    files.py, which rejects some records itself before the pipeline) are counted exactly as the
    in-process run counts them."""
    from stream.contract.settings import load
    from stream.offline.replay import replay

    now = time.time()
    fuzzed = list(records(5000, now, seed=5))
    fuzzed.insert(0, next(f for f in records(50, now, seed=6) if f.kind == "valid"))  # a JSON object first
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(f.raw for f in fuzzed) + b"\n")
    _, _, totals = per_record(fuzz_pipeline(now), fuzzed, max_lines=500)  # (record 0 is not "fz-0")
    settings = load()
    result = replay(settings, [path], as_of=now)
    assert (result.consumed, result.processed, result.expired, result.duplicates) == (
        totals["consumed"], totals["processed"], totals["expired"], totals["duplicates"])
    assert result.dead_lettered == totals["dead_lettered"]


def test_fuzzed_alerts_through_the_sink_are_stored_or_dead_lettered_with_their_reason(database_url):
    from prometheus_client import CollectorRegistry

    from stream.contract.settings import load
    from stream.store.alerts import AlertStore
    from stream.store.sink import SINK_REASONS, Sink

    store = AlertStore(database_url)
    try:
        registry = CollectorRegistry()
        sink = Sink(load(env={}), registry=registry, store=store)
        fuzzed = alert_records(1500, seed=3)
        by_kind, wrong = sink_outcomes(sink, fuzzed, batch_size=250)
        assert wrong == []
        dead = sum(registry.get_sample_value("custodes_sink_alerts_dead_lettered_total", {"reason": r}) or 0
                   for r in SINK_REASONS)
        assert dead == sum(n for (_, got), n in by_kind.items() if got != "stored")
        assert registry.get_sample_value("custodes_sink_alerts_consumed_total") == len(fuzzed)
        assert registry.get_sample_value("custodes_sink_database_up") == 1
        if store.engine.dialect.name == "postgresql":  # what SQLite stores, PostgreSQL refuses
            assert by_kind[("wide_subject", "data_error")] and by_kind[("long_detector", "data_error")]
        print(dict(sorted(by_kind.items())))
    finally:
        store.dispose()
