"""The repeated kill -9 scenario, shared by ``test_crash.py`` (5 kills, in CI) and ``bench/crash.py``
(10 or more, prints figures).

A generated stream (batched messages on their users' home partitions, single events on other
partitions that the worker re-keys, and bad lines) is fed at a steady pace while the worker is
SIGKILLed at random moments and restarted (each restart recovers the detector-state table from its
changelog). Afterwards the store is compared with offline replay of the same input.
"""

from __future__ import annotations

import contextlib
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson

from stream.contract.partitioning import home_partition
from stream.store.alerts import AlertStore
from tests.stream.events import export
from tests.stream.processes import wait_until

from .common import Feeder, Runner, expected_alerts, letter_reasons, messages, read_all, stored
from .common import workload as base_workload

BAD = {
    b'{"@timestamp": "2026-03-02T09:00:00", "user": {"id": "x"}}': "timestamp_without_timezone",
    b'{"user": {"id": "x"}}': "missing_timestamp",
    b"[1, 2, 3]": "not_an_object",
    b'{"truncated": tru': "invalid_json",
    b"\xff\xfe not utf-8": "not_utf8",
}


def rerouted_singles(now: float, partitions: int, users: int = 4, each: int = 15) -> list[tuple[int, bytes]]:
    """Single events on a partition that is not their user's home: the worker re-keys them."""
    out = []
    for i in range(each):
        for u in range(users):
            user = f"away{u}"
            away = (home_partition(user, partitions) + 1) % partitions
            out.append((away, orjson.dumps(export(user, now - 2000 + i * 60, 30, event_id=f"{user}-{i}"))))
    return out


@dataclass
class Outcome:
    kills: int
    seconds: float
    produced_messages: int
    expected: dict[str, int]
    """Alert id -> folded count, from offline replay."""
    got: dict[str, int]
    """Alert id -> folded count, in the store."""
    dead_letters: Counter = field(default_factory=Counter)
    distinct_dead_letters: Counter = field(default_factory=Counter)

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.expected) - set(self.got))

    @property
    def extra(self) -> list[str]:
        return sorted(set(self.got) - set(self.expected))

    @property
    def miscounted(self) -> dict[str, tuple[int, int]]:
        """(stored, replay) folded counts where they differ: an event applied twice or lost."""
        both = set(self.got) & set(self.expected)
        return {k: (self.got[k], self.expected[k]) for k in both if self.got[k] != self.expected[k]}


def kill_and_restart(runner: Runner, tmp_path, partitions: int, kills: int, feed_s: float = 35,
                     rng: random.Random | None = None, users: int = 40, per_user: int = 75) -> Outcome:
    rng = rng or random.Random()
    now = time.time()
    items, good = feed_items(now, partitions, rng, users, per_user)
    expected = expected_alerts(runner.settings, good, tmp_path, now)

    settings = runner.settings
    runner.start("sink")
    runner.start("worker")
    runner.wait_ready("worker")
    feeder = Feeder(runner.bootstrap, settings.topics.events, items, seconds=feed_s).start()
    done = 0
    started = time.monotonic()
    while done < kills:
        time.sleep(rng.uniform(0.5, 3.0))
        assert runner.stop("worker", signal.SIGKILL) == -signal.SIGKILL
        done += 1
        runner.start("worker")
        runner.wait_ready("worker")
    feeder.join()

    got = settle(runner.database_url, expected)
    raw, distinct = letter_reasons(read_all(runner.bootstrap, settings.topics.dead_letter))
    return Outcome(done, time.monotonic() - started, len(items), expected, got,
                   raw, distinct)


def feed_items(now: float, partitions: int, rng: random.Random, users: int = 40, per_user: int = 75
               ) -> tuple[list[tuple[int | None, bytes]], list[bytes]]:
    """(messages to produce, the good lines replay should see): batched messages, re-keyed singles
    and bad lines interleaved."""
    lines = base_workload(now, users=users, per_user=per_user)
    singles = rerouted_singles(now, partitions)
    items: list[tuple[int | None, bytes]] = list(messages(lines, partitions, batch=20))
    for extra in singles + [(0, raw) for raw in BAD]:
        items.insert(rng.randrange(len(items) + 1), extra)
    order = iter(sorted((x for x in items if x in singles), key=singles.index))
    items = [next(order) if x in singles else x for x in items]
    return items, lines + [v for _, v in singles]


def settle(database_url: str, expected: dict[str, int]) -> dict[str, int]:
    """The stored alerts once they equal ``expected`` (or after 90 s, whatever they are)."""
    store = AlertStore(database_url)
    try:
        last: list = [None]

        def settled() -> bool:
            last[0] = stored(store)
            return last[0] == expected

        with contextlib.suppress(AssertionError):
            wait_until(settled, 90, message="stored alerts == replay's")
        return last[0]
    finally:
        store.dispose()
