"""Bad input at volume: 20,000 fuzzed records (truncated, wrong types, huge strings, deep nesting,
invalid UTF-8, NaN/Infinity, far-past and far-future times, byte flips, non-objects, missing fields,
and some valid events) through Apache Kafka into the worker.

What it proves: the worker never crashes (still running, /health 200), every record is accounted
for (consumed - rerouted == processed + dead-lettered + expired == 20,000), the dead-letter topic
holds one record per rejected line with a reason from stream.schema.REASONS, and the counts by
reason equal the in-process oracle (the same messages through ``Pipeline``, as replay does).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from detectors import registry
from stream.pipeline import Pipeline
from stream.schema import REASONS
from tests.stream.processes import wait_until

from .common import Feeder, Runner, letter_reasons, read_all
from .fuzzgen import batches, outcomes, records

pytestmark = pytest.mark.kafka

PARTITIONS = 3
N = 20_000


def test_fuzzed_records_are_all_accounted_for(kafka_broker, topic_prefix, tmp_path):
    r = Runner(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
               {"partitions": PARTITIONS, "log_level": "warning"})
    try:
        now = time.time()
        lines = [raw for _, raw in records(N, now, seed=int(now) % 1000)]
        msgs = batches(lines)
        settings = r.settings
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
