"""Fixed (was a bug): a crash between re-keying and the offset commit re-sends every re-keyed event of the
uncommitted messages to the rerouted topic, at new offsets. Those copies are not caught by the
per-message position (they are new messages), only by the user's recent event-id hashes (the last
``dedupe_events`` = 64). When more than 64 of one user's re-keyed events are re-sent, none is
recognised: each copy, applied as new, pushes the oldest remembered id out of the 64 -- exactly the
id the next copy would have matched (first-in-first-out thrash). All of them were applied twice. Now each
re-keyed copy carries its origin position (header ``custodes.origin``), which is what the worker
deduplicates, so copies are recognised however many there are.

Here: one message (an NDJSON shipper's batch, not on the user's home partition, so every event is
re-keyed) with 150 high-sensitivity exports of 1 record each. 150 records is within bulk_export's
high limit of 200, so replay raises no alert. The worker is killed (-9) after applying all 150 and
before committing (commit interval raised to 600 s so that the timing is deterministic), then
restarted. Expected: no alert. Observed: 0 of the 150 re-sent events recognised, 300 records
counted, a false bulk_export alert stored. Single events (as Beats sends them, most re-keyed) show
the same once more than 64 of a user's are in the uncommitted stretch (Faust commits every 2.8 s).
"""

from __future__ import annotations

import signal
import time

import orjson
import pytest

from stream.contract.partitioning import home_partition
from stream.store.alerts import AlertStore
from tests.stream.events import export
from tests.stream.processes import wait_until

from .common import FAST_GROUP_ENV, Feeder, Runner, expected_alerts, stored

pytestmark = pytest.mark.kafka

PARTITIONS = 2


def test_rekeyed_events_are_not_applied_twice_after_kill(kafka_broker, topic_prefix, tmp_path):
    r = Runner(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
               {"partitions": PARTITIONS, "log_level": "warning"},
               extra_env={**FAST_GROUP_ENV, "BROKER_COMMIT_INTERVAL": "600"})
    try:
        now = time.time()
        user = "busy"
        away = (home_partition(user, PARTITIONS) + 1) % PARTITIONS
        lines = [orjson.dumps(export(user, now - 1200 + i, 1, event_id=f"b{i}")) for i in range(150)]
        expected = expected_alerts(r.settings, lines, tmp_path, now)
        assert expected == {}  # 150 <= 200: no alert
        r.start("sink")
        r.start("worker")
        r.wait_ready("worker")
        # one message holding the user's 150 events (an NDJSON shipper's batch), not on their home
        Feeder(r.bootstrap, r.settings.topics.events, [(away, b"\n".join(lines))], seconds=0).start().join()
        wait_until(lambda: r.total("custodes_events_processed_total") == 150, 60, message="150 applied")
        time.sleep(1.5)  # the state's changelog writes reach the broker; no offset commit (600 s)
        assert r.stop("worker", signal.SIGKILL) == -signal.SIGKILL
        r.start("worker")
        r.wait_ready("worker")
        # the restarted worker re-reads the uncommitted input message and re-keys its 150 events again
        try:
            wait_until(lambda: r.total("custodes_events_rerouted_total") == 150, 30, message="input re-read")
        except AssertionError:
            pytest.skip("the input offset was committed before the kill: nothing re-sent to exercise")
        rekeyed = r.settings.topics.rerouted
        wait_until(lambda: r.reconciled() and r.metrics().get(
            ("custodes_events_consumed_total", (("topic", rekeyed),)), 0) >= 150, 60,
            message="the re-sent copies consumed")
        time.sleep(3)
        store = AlertStore(r.database_url)
        try:
            got = stored(store)
        finally:
            store.dispose()
        duplicates = r.total("custodes_events_duplicate_total")
        assert got == expected, f"false alerts {got}; recognised re-sent events: {duplicates:.0f} of 150"
    finally:
        r.stop_all()
