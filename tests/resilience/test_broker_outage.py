"""The broker goes away mid-stream: frozen (SIGSTOP, a hung host or a long GC pause) for 16 s, and,
later in the same stream, stopped and started again.

What it proves: the worker and the sink ride it out (both processes still running, the worker's
/health answers 200 afterwards), and once the stream is through, the store holds exactly the alerts
offline replay finds for the same input (ids and folded counts): nothing lost, nothing duplicated,
although the producer's retries may put a message on the topic twice (the worker recognises the
re-sent events by id).
"""

from __future__ import annotations

import time

import pytest

from stream.store.alerts import AlertStore
from tests.stream.processes import wait_until

from .common import Feeder, Runner, expected_alerts, messages, stored, workload

pytestmark = pytest.mark.kafka

PARTITIONS = 3


@pytest.fixture
def runner(kafka_broker, topic_prefix, tmp_path):
    r = Runner(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
               {"partitions": PARTITIONS, "log_level": "warning"})
    yield r
    r.stop_all()


def test_worker_survives_frozen_and_restarted_broker(runner, kafka_broker, tmp_path):
    now = time.time()
    lines = workload(now, users=30, per_user=60)
    expected = expected_alerts(runner.settings, lines, tmp_path, now)
    settings = runner.settings
    runner.start("sink")
    runner.start("worker")
    runner.wait_ready("worker")
    runner.wait_ready("sink")
    feeder = Feeder(runner.bootstrap, settings.topics.events, messages(lines, PARTITIONS, 20),
                    seconds=30).start()

    time.sleep(4)
    sent_before = feeder.sent
    kafka_broker.freeze()
    try:
        time.sleep(16)
    finally:
        kafka_broker.thaw()
    kafka_broker.wait_ready()
    assert runner.procs["worker"].poll() is None, runner.log("worker")
    assert runner.procs["sink"].poll() is None, runner.log("sink")
    wait_until(lambda: feeder.sent > sent_before + 5, 60, message="producing resumed after the thaw")

    time.sleep(3)
    kafka_broker.stop()
    time.sleep(3)
    kafka_broker.start()
    feeder.join()

    store = AlertStore(runner.database_url)
    try:
        last: list = [None]

        def settled():
            last[0] = stored(store)
            return last[0] == expected

        wait_until(settled, 120, message="stored alerts == replay's")
    finally:
        store.dispose()
    assert runner.procs["worker"].poll() is None, runner.log("worker")
    assert runner.procs["sink"].poll() is None, runner.log("sink")
    assert runner.health("worker") == 200
    wait_until(lambda: runner.reconciled(), 30, message="worker counters reconcile")
    consumed = runner.total("custodes_events_consumed_total")
    duplicates = runner.total("custodes_events_duplicate_total")
    # a rebalance may redeliver messages (counted as consumed again): never fewer than were sent
    assert consumed - duplicates >= len(lines), (consumed, duplicates)
