"""kill -9 of the worker, again and again, while a stream of events goes through Apache Kafka.

What it proves: after at least five SIGKILLs at random moments (each followed by a restart that
recovers the detector-state table from its changelog), the store holds exactly the alerts offline
replay finds for the same input (same ids, same folded counts: no alert lost, none duplicated, no
event counted twice), and every bad line is dead-lettered with its reason.

Reconciliation. Counters live in the process and die with it, so the killed processes' counts are
unobservable; only what they left on the broker and in the store is. The test therefore reconciles:
  * whole run, from durable outputs: the distinct dead letters (by source topic/partition/offset/
    line) are exactly the bad inputs with their reasons (a message redelivered after a kill may
    dead-letter its bad lines a second time: at-least-once, reported, never fewer); the stored
    alerts equal replay's, which is only possible if every good event was applied once;
  * the final (never killed) process, from its metrics: consumed - rerouted == processed +
    dead-lettered + expired. This holds per message (the counters move together at its end), so it
    holds for any process that has finished every message it started.
"""

from __future__ import annotations

import contextlib
import random
import signal
import time
from collections import Counter

import orjson
import pytest

from stream.partitioning import home_partition
from stream.store import AlertStore
from tests.stream.processes import wait_until

from .common import FAST_GROUP_ENV, Feeder, Runner, expected_alerts, letter_reasons, messages, read_all, stored
from .common import workload as base_workload

pytestmark = pytest.mark.kafka

PARTITIONS = 3
BAD = {
    b'{"@timestamp": "2026-03-02T09:00:00", "user": {"id": "x"}}': "timestamp_without_timezone",
    b'{"user": {"id": "x"}}': "missing_timestamp",
    b"[1, 2, 3]": "not_an_object",
    b'{"truncated": tru': "invalid_json",
    b"\xff\xfe not utf-8": "not_utf8",
}


@pytest.fixture
def runner(kafka_broker, topic_prefix, tmp_path):
    r = Runner(kafka_broker.bootstrap, tmp_path, topic_prefix, f"sqlite:///{tmp_path}/custodes.db",
               {"partitions": PARTITIONS, "log_level": "warning"}, extra_env=dict(FAST_GROUP_ENV))
    yield r
    r.stop_all()


def rerouted_singles(now: float, users: int = 4, each: int = 15) -> list[tuple[int, bytes]]:
    """Single events on a partition that is not their user's home: the worker re-keys them."""
    from tests.stream.events import export

    out = []
    for i in range(each):
        for u in range(users):
            user = f"away{u}"
            away = (home_partition(user, PARTITIONS) + 1) % PARTITIONS
            out.append((away, orjson.dumps(export(user, now - 2000 + i * 60, 30, event_id=f"{user}-{i}"))))
    return out


@pytest.mark.xfail(strict=False, reason=(
    "KNOWN BUG, open in issue 8: after repeated kill -9, some alerts get different ids than replay's "
    "(windows opened at other event times: counts differ after a restart), for home-partition users too; "
    "re-keyed duplicates are fixed (test_reroute_redelivery), the root cause of the rest is not found yet"))
def test_repeated_kill_9_loses_and_duplicates_nothing(runner, tmp_path):
    rng = random.Random()
    now = time.time()
    lines = base_workload(now)
    singles = rerouted_singles(now)
    batched = messages(lines, PARTITIONS, batch=20)
    bad = [(0, raw) for raw in BAD]
    # interleave: the batched stream with the singles and the bad lines spread through it
    items: list[tuple[int | None, bytes]] = list(batched)
    for extra in singles + bad:
        items.insert(rng.randrange(len(items) + 1), extra)
    # singles of one user must stay in order (one partition each, so Kafka keeps producer order)
    order = iter(sorted((x for x in items if x in singles), key=singles.index))
    items = [next(order) if x in singles else x for x in items]
    expected = expected_alerts(runner.settings, lines + [v for _, v in singles], tmp_path, now)
    assert len(expected) > 100

    settings = runner.settings
    runner.start("sink")
    runner.start("worker")
    runner.wait_ready("worker")
    feeder = Feeder(runner.bootstrap, settings.topics.events, items, seconds=35).start()
    kills = 0
    started = time.monotonic()
    while kills < 5 or feeder.thread.is_alive():
        time.sleep(rng.uniform(0.5, 3.0))
        if kills >= 5 and not feeder.thread.is_alive():
            break
        assert runner.stop("worker", signal.SIGKILL) == -signal.SIGKILL
        kills += 1
        runner.start("worker")
        runner.wait_ready("worker")
        if kills >= 8:
            break
    feeder.join()
    assert kills >= 5
    produced_events = len(lines) + len(singles) + len(bad)

    store = AlertStore(runner.database_url)
    try:
        last: list = [None]

        def settled():
            last[0] = stored(store)
            return last[0] == expected

        with contextlib.suppress(AssertionError):  # the assertions below say what differs
            wait_until(settled, 90, message="stored alerts == replay's")
        got = last[0]
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        counts = {k: (got[k], expected[k]) for k in set(got) & set(expected) if got[k] != expected[k]}
        if missing or extra:
            from stream.replay import replay

            src = tmp_path / "replay-input.jsonl"
            found = replay(settings, [src], as_of=now).alerts
            what = [(found[i].detector, found[i].subject, found[i].count) for i in missing]
            m = runner.metrics()
            lag = {k: v for k, v in m.items() if k[0] == "custodes_consumer_lag_messages" and v}
            raise AssertionError(f"missing {what}, extra {extra}; final worker lag {lag}, consumed "
                                 f"{runner.total('custodes_events_consumed_total')}")
        assert not counts, f"folded counts (stored, replay) differ: an event applied twice or lost: {counts}"
    finally:
        store.dispose()

    # the final process finished everything it started
    wait_until(lambda: runner.reconciled(), 30, message="final worker's counters reconcile")
    raw, distinct = letter_reasons(read_all(runner.bootstrap, settings.topics.dead_letter))
    assert distinct == Counter(BAD.values())
    assert all(raw[r] >= n for r, n in distinct.items())
    assert runner.procs["worker"].poll() is None
    print(f"{kills} kills in {time.monotonic() - started:.0f} s; {produced_events} events; "
          f"dead letters {dict(raw)} (distinct {dict(distinct)}); "
          f"final process: consumed {runner.total('custodes_events_consumed_total'):.0f}, "
          f"redelivered messages {runner.total('custodes_messages_redelivered_total'):.0f}, "
          f"duplicate events {runner.total('custodes_events_duplicate_total'):.0f}")
