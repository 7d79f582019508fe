"""Latency: produce -> alert stored, at a steady produce rate, through Apache Kafka, the worker and
the sink (SQLite). Background load is look-up events at --rate events/s: ordinary work that raises no
alert (5,000 users, each looking records up under a case assigned to them in the case register the
bench writes). Every 1/--probe-rate s a probe user sends one event that raises an alert by itself (a
transfer to gmail.com: third_party_transfer). Latency = the alert row's created_at (set by the sink at
the upsert) minus the probe's produce time (same clock). Background events go one per Kafka message
to the user's home partition, as Beats sends them, or --per-message N of them newline-joined per
message, as `custodes ingest` sends them; probes always go alone.

    python bench/latency.py                          # 500 events/s for 30 s
    python bench/latency.py --rate 2000 --seconds 60 --json bench/results/latency.json
    python bench/latency.py --rate 10000 --per-message 100     # batched background load
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


USERS = 5_000
"""Background users; each looks records up under the cases assigned to them (no alert)."""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def run(bootstrap: str, work: Path, rate: float, seconds: float, probe_rate: float, partitions: int,
        per_message: int = 1) -> dict:
    from kafka import KafkaProducer
    from sqlalchemy import select

    from bench.streaming import CASES_PER_USER, case_of, write_reference
    from stream.contract.partitioning import home_partition
    from stream.store.alerts import AlertStore
    from stream.store.tables import alerts
    from tests.stream.events import export
    from tests.stream.processes import Custodes

    prefix = f"lat{random.randrange(10**6)}-"
    db = f"sqlite:///{work}/latency.db"
    reference = write_reference(work / "reference", USERS)  # background look-ups cite their own cases
    c = Custodes(bootstrap, work, prefix, db, {"partitions": partitions, "log_level": "warning",
                                               "reference_dir": str(reference)})
    c.start("worker")
    c.start("sink")
    try:
        c.wait_ready("worker", 120)
        c.wait_ready("sink", 120)
        topic = c.settings.topics.events
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
        sent_at: dict[str, float] = {}
        rng = random.Random(1)
        started = time.monotonic()
        n = probes = 0
        next_probe = started
        pending: list[list[bytes]] = [[] for _ in range(partitions)]  # background events per partition
        while time.monotonic() - started < seconds:
            now = time.time()
            if time.monotonic() >= next_probe:
                user = f"probe{probes:05d}"
                doc = export(user, now, 2, event_id=f"p{probes}", kind="share",
                             destination={"domain": "gmail.com"})
                sent_at[user] = time.time()
                producer.send(topic, value=orjson.dumps(doc), partition=home_partition(user, partitions))
                probes += 1
                next_probe += 1 / probe_rate
            u = rng.randrange(USERS)
            user = f"user-{u:05d}"
            doc = export(user, now, 1, event_id=f"b{n}", kind="record_access", sensitivity="low")
            doc["custodes"]["case"] = {"ref": case_of(u, rng.randrange(CASES_PER_USER))}
            partition = home_partition(user, partitions)
            waiting = pending[partition]
            waiting.append(orjson.dumps(doc))
            if len(waiting) >= per_message:
                producer.send(topic, value=b"\n".join(waiting), partition=partition)
                waiting.clear()
            n += 1
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        for partition, waiting in enumerate(pending):
            if waiting:
                producer.send(topic, value=b"\n".join(waiting), partition=partition)
        producer.flush()
        produced_s = time.monotonic() - started
        store = AlertStore(db)
        deadline = time.monotonic() + 120
        got: dict[str, float] = {}
        while time.monotonic() < deadline and len(got) < len(sent_at):
            with store.engine.connect() as conn:
                for subject, created in conn.execute(select(alerts.c.subject, alerts.c.created_at)
                                                     .where(alerts.c.subject.like("probe%"))):
                    created = created if created.tzinfo else created.replace(tzinfo=UTC)
                    got[subject] = created.timestamp()
            time.sleep(0.5)
        store.dispose()
        lat = [got[u] - t for u, t in sent_at.items() if u in got]
        return {"rate_target": rate, "events_per_message": per_message,
                "rate_achieved": round((n + probes) / produced_s), "seconds": seconds,
                "probes": probes, "probes_stored": len(lat),
                "p50_ms": round(pct(lat, 0.5) * 1000, 1), "p99_ms": round(pct(lat, 0.99) * 1000, 1),
                "max_ms": round(max(lat) * 1000, 1), "at": datetime.now(UTC).isoformat()}
    finally:
        c.stop_all()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--probe-rate", type=float, default=2)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--per-message", type=int, default=1, help="background events per Kafka message")
    ap.add_argument("--broker")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="custodes-latency-"))
    broker = None
    try:
        bootstrap = args.broker
        if not bootstrap:
            from tests.harness.kafka import start_broker

            broker = start_broker(work)
            bootstrap = broker.bootstrap
        out = run(bootstrap, work, args.rate, args.seconds, args.probe_rate, args.partitions,
                  args.per_message)
        for k, v in out.items():
            print(f"{k:<16}  {v:,}" if isinstance(v, int | float) else f"{k:<16}  {v}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    finally:
        if broker is not None:
            broker.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
