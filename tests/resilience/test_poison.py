"""A detector that raises on one event: that event is dead-lettered with reason ``detector_failed``
and the detector's id, and every other detector still sees it and the rest of the batch.

No shipped detector raises on a validated event (the schema rejects what could make one fail), so
a test-only detector, ``poison_pill`` (tests/resilience/poison_worker.py), is added to the real
worker through a wrapper of ``detectors.registry.build``; the worker is otherwise
``python -m stream.cli worker``. The same is checked in-process on ``Pipeline`` without Kafka.
"""

from __future__ import annotations

import time

import orjson
import pytest

from detectors import registry
from stream.contract.settings import load
from stream.store.alerts import AlertStore
from stream.worker.pipeline import Pipeline
from tests.stream.events import export
from tests.stream.processes import wait_until

from .common import Feeder, Runner, expected_alerts, letter_reasons, read_all, stored
from .poison_worker import PoisonPill

PARTITIONS = 2


def victim_events(now: float) -> list[bytes]:
    # 3 x 80 high-sensitivity records within the hour: bulk_export alerts; the middle one is poison
    ids = ["v0", "poison-1", "v2"]
    return [orjson.dumps(export("victim", now - 600 + i * 60, 80, event_id=e)) for i, e in enumerate(ids)]


def test_pipeline_isolates_the_failing_detector():
    settings = load()
    base = registry.build(settings.detectors)
    now = time.time()
    plain = Pipeline(settings, base, lambda: now)
    poisoned = Pipeline(settings, [*base, PoisonPill()], lambda: now)
    value = b"\n".join(victim_events(now))
    split = poisoned.split(value, "t", 0, 0)
    events = split.groups["victim"]
    out = poisoned.apply("victim", events, None, "e", 0, 0)
    ref = plain.apply("victim", plain.split(value, "t", 0, 0).groups["victim"], None, "e", 0, 0)
    assert [f.detector for f in out.failures] == ["poison_pill"]
    assert out.failures[0].event.id == "poison-1"
    # the other detectors saw all three events: the same alerts as without the failing detector
    assert [a.id for a in out.alerts] == [a.id for a in ref.alerts] and ref.alerts
    assert orjson.loads(out.state)["d"]["poison_pill"] == {"n": 2}
    letters = poisoned.failure_letters(out.failures, "t", 0, 0)
    assert [(lt.reason, lt.detector) for lt in letters] == [("detector_failed", "poison_pill")]
    assert ("custodes.detector", b"poison_pill") in letters[0].headers()
    assert orjson.loads(letters[0].raw)["event"]["id"] == "poison-1"


@pytest.mark.kafka
def test_worker_dead_letters_poison_with_detector_id(kafka_broker, topic_prefix, tmp_path):
    r = Runner(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
               {"partitions": PARTITIONS, "log_level": "warning"}, module="tests.resilience.poison_worker")
    try:
        now = time.time()
        lines = victim_events(now)
        expected = expected_alerts(r.settings, lines, tmp_path, now)
        assert expected
        r.start("sink")
        r.start("worker")
        r.wait_ready("worker")
        from stream.contract.partitioning import home_partition

        Feeder(r.bootstrap, r.settings.topics.events,
               [(home_partition("victim", PARTITIONS), b"\n".join(lines))], seconds=0).start().join()
        wait_until(lambda: r.reconciled(len(lines)), 60, message="three events accounted for")
        assert r.total("custodes_events_processed_total") == 2
        assert r.total("custodes_events_dead_lettered_total") == 1
        records = read_all(r.bootstrap, r.settings.topics.dead_letter)
        raw, _ = letter_reasons(records)
        assert dict(raw) == {"detector_failed": 1}
        headers = dict(records[0].headers)
        assert headers["custodes.detector"] == b"poison_pill"
        assert orjson.loads(records[0].value)["event"]["id"] == "poison-1"
        store = AlertStore(r.database_url)
        try:
            wait_until(lambda: stored(store) == expected, 60, message="other detectors' alerts stored")
        finally:
            store.dispose()
        assert r.procs["worker"].poll() is None
    finally:
        r.stop_all()
