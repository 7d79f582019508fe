"""Shared pieces of the resilience tests: a Custodes runner with test-only environment (Faust group
timeouts short enough that a SIGKILLed worker's replacement is assigned its partitions in seconds,
not the 60 s default), a workload with a known set of alerts, and Kafka read-back helpers."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer

from stream.contract.partitioning import home_partition
from stream.offline.replay import replay
from tests.stream.events import export
from tests.stream.processes import Custodes

REPO = Path(__file__).resolve().parents[2]

# Faust reads these from the environment (faust.types.settings: env_name=...). The broker's
# group.min.session.timeout.ms is 6 s, so 6 s is the shortest session it accepts.
FAST_GROUP_ENV = {
    "BROKER_SESSION_TIMEOUT": "6",
    "BROKER_HEARTBEAT_INTERVAL": "1",
    "BROKER_REBALANCE_TIMEOUT": "20",
}


@dataclass
class Runner(Custodes):
    """``Custodes`` plus extra environment and an optional ``module`` to run instead of stream.cli."""

    extra_env: dict = field(default_factory=dict)
    module: str = "stream.cli"

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env.update(self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        return env

    def start(self, name: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", self.module, name], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.workdir)
        self.procs[name] = proc
        return proc

    def health(self, name: str = "worker") -> int:
        port = self.worker_port if name == "worker" else self.sink_port
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                return r.status
        except OSError:
            return 0

    def reconciled(self, expected_in: int | None = None) -> bool:
        """This process's own counters: consumed - rerouted == processed + dead-lettered + expired
        (every message it finished), and optionally == ``expected_in``."""
        m = self.metrics()

        def tot(name: str) -> float:
            return sum(v for (n, _), v in m.items() if n == name)

        consumed = tot("custodes_events_consumed_total") - tot("custodes_events_rerouted_total")
        done = (tot("custodes_events_processed_total") + tot("custodes_events_dead_lettered_total")
                + tot("custodes_events_expired_total"))
        return consumed == done and (expected_in is None or consumed == expected_in)


def workload(now: float, users: int = 40, per_user: int = 75, seed: int = 7) -> list[bytes]:
    """``users * per_user`` canonical events over the last ~50 minutes, in time order per user, with
    many alerts: high-sensitivity exports that cross bulk_export's 200-record limit several times
    (and fold repeats), distinct-record look-ups, and transfers to outside domains."""
    rng = random.Random(seed)
    out: list[bytes] = []
    start = now - 3000
    for i in range(per_user):
        for u in range(users):
            user = f"u{u:03d}"
            ts = start + i * 40 + u * 0.01
            r = rng.random()
            if r < 0.5:
                doc = export(user, ts, rng.randrange(1, 40), event_id=f"{user}-{i}")
            elif r < 0.8:
                doc = export(user, ts, 1, event_id=f"{user}-{i}", kind="record_access")
                doc["custodes"]["record"] = {"ids": [f"P{u:03d}{i:04d}"]}
            else:
                doc = export(user, ts, rng.randrange(1, 5), event_id=f"{user}-{i}", kind="share",
                             destination={"domain": rng.choice(["gmail.com", "example.org", "police.uk"])})
            out.append(orjson.dumps(doc))
    return out


def user_of(line: bytes) -> str:
    return orjson.loads(line)["user"]["id"]


def messages(lines: list[bytes], partitions: int, batch: int) -> list[tuple[int, bytes]]:
    """Pack lines per home partition of their user, ``batch`` lines per message (as ingest does)."""
    out: list[tuple[int, bytes]] = []
    pending: dict[int, list[bytes]] = {}
    for line in lines:
        p = home_partition(user_of(line), partitions)
        group = pending.setdefault(p, [])
        group.append(line)
        if len(group) >= batch:
            out.append((p, b"\n".join(pending.pop(p))))
    out += [(p, b"\n".join(g)) for p, g in pending.items()]
    return out


def expected_alerts(settings, lines: list[bytes], tmp: Path, now: float) -> dict[str, int]:
    """Alert id -> folded count, as offline replay finds them for the same lines."""
    path = tmp / "replay-input.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = replay(settings, [path], as_of=now)
    return {a.id: a.count for a in result.alerts.values()}


@dataclass
class Feeder:
    """Produces messages in a background thread at a steady pace (so faults land mid-stream)."""

    bootstrap: str
    topic: str
    items: list[tuple[int | None, bytes]]
    seconds: float
    sent: int = 0
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feeder:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            # one request in flight and endless retries: messages keep their order through outages
            producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                                     retries=1_000_000, max_block_ms=120_000, request_timeout_ms=30_000,
                                     max_in_flight_requests_per_connection=1)
            pause = self.seconds / max(1, len(self.items))
            futures = []
            for p, value in self.items:
                futures.append(producer.send(self.topic, value=value, partition=p))
                self.sent += 1
                time.sleep(pause)
            producer.flush(timeout=180)
            for f in futures:
                f.get(timeout=180)
            producer.close()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def join(self, timeout: float = 240) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "producer did not finish"
        if self.error is not None:
            raise self.error


def read_all(bootstrap: str, topic: str, idle_ms: int = 3000) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=idle_ms, group_id=None, enable_auto_commit=False)
    try:
        return list(consumer)
    finally:
        consumer.close()


def letter_reasons(records: list) -> tuple[Counter, Counter]:
    """(reasons of all dead letters, reasons of distinct source positions): a redelivered message
    may dead-letter the same line twice, which is at-least-once, not a loss or a new error."""
    raw: Counter = Counter()
    distinct: dict[tuple, str] = {}
    for rec in records:
        h = {k: v.decode() for k, v in rec.headers}
        raw[h["custodes.reason"]] += 1
        key = (h.get("custodes.source.topic"), h.get("custodes.source.partition"),
               h.get("custodes.source.offset"), h.get("custodes.source.line"), h.get("custodes.detector"),
               rec.value)
        distinct[key] = h["custodes.reason"]
    return raw, Counter(distinct.values())


def stored(store, limit: int = 100_000) -> dict[str, int]:
    return {r["id"]: r["count"] for r in store.list_alerts(limit=limit)}
