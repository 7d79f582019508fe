"""A small demo stream for ``custodes run --demo``: a few staff doing ordinary look-ups, and now and
then one of them exporting far more high-sensitivity records than allowed, so alerts appear within a
minute. Deterministic for a given seed. (The synthetic organisation generator supersedes this.)"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
from kafka import KafkaProducer

from .partitioning import home_partition
from .settings import Settings

STAFF = [f"officer-{i:03d}" for i in range(1, 41)]


def demo_events(seed: int, now: float, tick: int) -> Iterator[dict]:
    rng = random.Random(seed * 1_000_003 + tick)
    stamp = datetime.fromtimestamp(now, UTC).isoformat()
    for n in range(20):
        user = rng.choice(STAFF)
        yield {
            "@timestamp": stamp,
            "event": {"id": f"demo-{seed}-{tick}-{n}", "action": "record-view"},
            "user": {"id": user, "name": user.replace("-", " ").title()},
            "custodes": {"activity": "record_access", "record": {"ids": [f"P{rng.randrange(10**6):06d}"]},
                         "dataset": {"name": "pnc-persons", "sensitivity": "high"},
                         "case": {"ref": f"CASE-{rng.randrange(500):04d}"}},
        }
    if tick % 20 == 5:
        user = STAFF[(tick // 20) % len(STAFF)]
        yield {
            "@timestamp": stamp,
            "event": {"id": f"demo-{seed}-{tick}-export", "action": "report-download"},
            "user": {"id": user},
            "destination": {"domain": "mailing-agency.example"},
            "custodes": {"activity": "export", "record": {"count": 30_000},
                         "dataset": {"name": "firearm-certificates", "sensitivity": "high"}},
        }


def run_demo(settings: Settings, stop: threading.Event, seed: int = 7, interval_s: float = 1.0) -> None:
    import time

    producer = KafkaProducer(bootstrap_servers=(settings.broker or "").split(","), acks="all",
                             client_id="custodes-demo")
    topic = settings.topics.events
    partitions = len(producer.partitions_for(topic) or ()) or settings.partitions
    tick = 0
    try:
        while not stop.is_set():
            by_partition: dict[int, list[bytes]] = {}
            for doc in demo_events(seed, time.time(), tick):
                p = home_partition(doc["user"]["id"], partitions)
                by_partition.setdefault(p, []).append(orjson.dumps(doc))
            for p, lines in by_partition.items():
                producer.send(topic, value=b"\n".join(lines), partition=p)
            producer.flush()
            tick += 1
            stop.wait(interval_s)
    finally:
        producer.close()
