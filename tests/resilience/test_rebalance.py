"""Two workers in one consumer group while partitions move between them: one leaves gracefully
(SIGTERM: its partitions are revoked while it may hold a micro-batch not yet acknowledged), comes
back, then the other is SIGKILLed and restarted. The store must hold exactly replay's alerts."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter

import pytest

from .common import FAST_GROUP_ENV, Feeder, Runner, expected_alerts, letter_reasons, read_all
from .crash_scenario import BAD, feed_items, settle

pytestmark = pytest.mark.kafka

PARTITIONS = 4


def test_partitions_moving_between_two_workers_lose_and_duplicate_nothing(kafka_broker, topic_prefix, tmp_path):
    rng = random.Random()
    now = time.time()
    db = f"sqlite:///{tmp_path}/custodes.db"
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    conf = {"partitions": PARTITIONS, "log_level": "warning"}
    a = Runner(kafka_broker.bootstrap, a_dir, topic_prefix, db, conf, extra_env=dict(FAST_GROUP_ENV))
    b = Runner(kafka_broker.bootstrap, b_dir, topic_prefix, db, conf, extra_env=dict(FAST_GROUP_ENV))
    try:
        items, good = feed_items(now, PARTITIONS, rng)
        expected = expected_alerts(a.settings, good, tmp_path, now)
        assert len(expected) > 100
        a.start("sink")
        a.start("worker")
        b.start("worker")
        a.wait_ready("worker")
        b.wait_ready("worker")
        feeder = Feeder(a.bootstrap, a.settings.topics.events, items, seconds=30).start()
        time.sleep(6)
        assert b.stop("worker", signal.SIGTERM) == 0  # graceful: its partitions are revoked
        time.sleep(4)
        b.start("worker")
        b.wait_ready("worker")
        time.sleep(4)
        assert a.stop("worker", signal.SIGKILL) == -signal.SIGKILL
        a.start("worker")
        a.wait_ready("worker")
        feeder.join()

        got = settle(db, expected)
        missing = set(expected) - set(got)
        extra = set(got) - set(expected)
        assert not missing and not extra, f"{len(missing)} alerts missing, {len(extra)} extra"
        miscounted = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
        assert not miscounted, f"folded counts (stored, replay) differ: {miscounted}"
        _, distinct = letter_reasons(read_all(a.bootstrap, a.settings.topics.dead_letter))
        assert distinct == Counter(BAD.values())
        assert a.procs["worker"].poll() is None and b.procs["worker"].poll() is None
    finally:
        a.stop_all()
        b.stop_all()
