"""kill -9 of the worker, again and again, while a stream of events goes through Apache Kafka.

What it proves: after at least five SIGKILLs at random moments (each followed by a restart that
recovers the detector-state table from its changelog), the store holds exactly the alerts offline
replay finds for the same input (same ids, same folded counts: no alert lost, none duplicated, no
event counted twice), and every bad line is dead-lettered with its reason. ``bench/crash.py`` runs
the same scenario with more kills.

Reconciliation. Counters live in the process and die with it, so the killed processes' counts are
unobservable; only what they left on the broker and in the store is. The test therefore reconciles:
  * whole run, from durable outputs: the distinct dead letters (by source topic/partition/offset/
    line) are exactly the bad inputs with their reasons (a message redelivered after a kill may
    dead-letter its bad lines a second time: at-least-once, reported, never fewer); the stored
    alerts equal replay's, which is only possible if every good event was applied once;
  * the final (never killed) process, from its metrics: consumed - rerouted == processed +
    dead-lettered + expired. This holds per micro-batch (the counters move together at its end), so
    it holds for any process that has finished every batch it started.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.stream.processes import wait_until

from .common import FAST_GROUP_ENV, Runner
from .crash_scenario import BAD, kill_and_restart

pytestmark = pytest.mark.kafka

PARTITIONS = 3


@pytest.fixture
def runner(kafka_broker, topic_prefix, tmp_path):
    r = Runner(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
               {"partitions": PARTITIONS, "log_level": "warning"}, extra_env=dict(FAST_GROUP_ENV))
    yield r
    r.stop_all()


def test_repeated_kill_9_loses_and_duplicates_nothing(runner, tmp_path):
    out = kill_and_restart(runner, tmp_path, PARTITIONS, kills=5, rng=random.Random())
    assert out.kills >= 5
    assert len(out.expected) > 100
    assert not out.missing and not out.extra, (
        f"{len(out.missing)} alerts missing, {len(out.extra)} extra (windows opened at other event times)")
    assert not out.miscounted, f"folded counts (stored, replay) differ: {out.miscounted}"

    # the final process finished everything it started
    wait_until(lambda: runner.reconciled(), 30, message="final worker's counters reconcile")
    assert out.distinct_dead_letters == Counter(BAD.values())
    assert all(out.dead_letters[r] >= n for r, n in out.distinct_dead_letters.items())
    assert runner.procs["worker"].poll() is None
    print(f"{out.kills} kills in {out.seconds:.0f} s; {out.produced_messages} messages; "
          f"dead letters {dict(out.dead_letters)}; final process: consumed "
          f"{runner.total('custodes_events_consumed_total'):.0f}, redelivered messages "
          f"{runner.total('custodes_messages_redelivered_total'):.0f}")
