"""The one-detector workload (bench/peers/workload.py) in the peer engines, each run in a child process
so its memory, threads and imports are its own:

    python -m bench.peers.engines bytewax-kafka --broker HOST:PORT --topic T --events N
    python -m bench.peers.engines quix-kafka --broker HOST:PORT --topic T --events N --messages M
    python -m bench.peers.engines bytewax-file --path events.jsonl --events N
    python -m bench.peers.engines duckdb-file --path events.jsonl --events N
    python -m bench.peers.engines custodes-file --path events.jsonl [--all-detectors --reference DIR]

Each prints one JSON line: {"engine", "events", "alerts", "events_per_s", "seconds"}. The rate is
measured from the first event the engine hands to its operator to the last (as the naive Faust agent
in bench/streaming.py is), so start-up, group join and topic creation are not counted.

What each does per event:
- bytewax (KafkaSource, one worker): split the message into lines, decode the JSON (orjson), parse
  the timestamp, key by user, ``stateful_map`` with :func:`advance` (state: the user's minute buckets
  in the window and the last alert's start, held in memory; bytewax snapshots it only if recovery is
  configured, which it is not here: a crash replays from the source's committed position, or loses
  the state), and counts the alerts.
- quixstreams (``StreamingDataFrame.apply(stateful=True)``): the same decode and step, the state read
  from and written to its RocksDB store (JSON values) and, on commit (every 5 s), to the store's
  changelog topic on Kafka, so a restarted app recovers it; at-least-once.
- Custodes on the file (``custodes-file``): ``stream.offline.replay.replay``, what ``custodes replay FILE``
  runs: read the file in 500-line chunks, decode and validate each event (schema, limits, retention
  gate), group each micro-batch per user, dedupe by event id, run the enabled detectors against the
  user's state (bulk_export only, or with ``--all-detectors`` all nine), encode the state.
- DuckDB (file only, one thread): a window query over the whole file (read_json, minute buckets, a running sum
  per user and an ASOF join for the window's start) finds the hits; the suppression fold over the
  hits (each alert depends on the one before) runs in Python (:func:`fold_hits`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.peers.workload import RULE, advance, fold_hits, parse  # noqa: E402


class Clock:
    """First and last time an event reached the operator."""

    __slots__ = ("first", "last", "events")

    def __init__(self) -> None:
        self.first = 0.0
        self.last = 0.0
        self.events = 0

    def tick(self) -> None:
        now = time.perf_counter()
        if not self.events:
            self.first = now
        self.last = now
        self.events += 1

    def rate(self) -> float:
        return self.events / (self.last - self.first) if self.last > self.first else 0.0


def _bytewax_flow(source: Any, lines_of: Any, clock: Clock, alerts: list) -> Any:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink

    def events(item: Any) -> list[tuple[str, tuple[float, int]]]:
        out = []
        for line in lines_of(item):
            clock.tick()
            user, ts, records = parse(line)
            out.append((user, (ts, records)))
        return out

    def step(state: dict | None, value: tuple[float, int]) -> tuple[dict, bool]:
        return advance(state, value[0], value[1], RULE)

    flow = Dataflow("custodes_peer")
    stream = op.input("in", flow, source)
    keyed = op.flat_map("events", stream, events)
    opened = op.stateful_map("window", keyed, step)
    op.output("alerts", op.filter("opened", opened, lambda kv: kv[1]), TestingSink(alerts))
    return flow


def bytewax_kafka(broker: str, topic: str, expected: int) -> dict:
    from bytewax.connectors.kafka import KafkaSource
    from bytewax.testing import run_main

    clock, alerts = Clock(), []
    # tail=False: read each partition to its end as of the start, then stop
    source = KafkaSource([broker], [topic], tail=False, batch_size=5000)
    run_main(_bytewax_flow(source, lambda msg: msg.value.split(b"\n"), clock, alerts))
    return {"engine": "bytewax", "events": clock.events, "alerts": len(alerts), "events_per_s": clock.rate(),
            "seconds": clock.last - clock.first}


def bytewax_file(path: Path) -> dict:
    from bytewax.connectors.files import FileSource
    from bytewax.testing import run_main

    clock, alerts = Clock(), []
    run_main(_bytewax_flow(FileSource(path, batch_size=5000), lambda line: (line,), clock, alerts))
    return {"engine": "bytewax", "events": clock.events, "alerts": len(alerts), "events_per_s": clock.rate(),
            "seconds": clock.last - clock.first}


def quix_kafka(broker: str, topic: str, expected: int, messages: int) -> dict:
    import logging
    import random

    from quixstreams import Application

    clock = Clock()
    alerts = [0]
    state_dir = tempfile.mkdtemp(prefix="quix-state-")
    app = Application(broker_address=broker, consumer_group=f"quix{random.randrange(10**9)}",
                      auto_offset_reset="earliest", state_dir=state_dir, loglevel=logging.WARNING)
    source = app.topic(topic, key_deserializer="bytes", value_deserializer="bytes")
    sdf = app.dataframe(source)

    def step(value: bytes, state: Any) -> int:
        # one event per message (keyed by user) or a batch of lines (keyed by partition): the state
        # of each user is kept under the user's id within the message key's store
        opened = 0
        for line in value.split(b"\n"):
            clock.tick()
            user, ts, records = parse(line)
            new, alert = advance(state.get(user), ts, records, RULE)
            state.set(user, new)
            opened += alert
        alerts[0] += opened
        return opened

    sdf.apply(step, stateful=True)
    try:
        app.run(count=messages, timeout=60, collect=False)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return {"engine": "quixstreams", "events": clock.events, "alerts": alerts[0], "events_per_s": clock.rate(),
            "seconds": clock.last - clock.first}


def custodes_file(path: Path, all_detectors: bool, reference: Path | None) -> dict:
    from bench.peers.workload import only_bulk_export
    from detectors.registry import CATALOG, index
    from stream.contract.settings import load
    from stream.offline.replay import replay

    settings = load()
    update: dict[str, Any] = {} if reference is None else {"reference_dir": reference}
    if not all_detectors:
        update["detectors"] = only_bulk_export(settings.detectors, index(CATALOG))
    settings = settings.model_copy(update=update)
    t = time.perf_counter()
    result = replay(settings, [path])
    seconds = time.perf_counter() - t
    return {"engine": "custodes-all" if all_detectors else "custodes", "events": result.processed,
            "alerts": len(result.alerts), "events_per_s": result.processed / seconds, "seconds": seconds,
            "dead_lettered": sum(result.dead_lettered.values())}


def duckdb_file(path: Path) -> dict:
    """The window in SQL over the whole file; the hits' suppression fold in Python."""
    import duckdb

    r = RULE
    t = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET threads = 1")  # one core, as every other engine here (replay is measured per core)
    hits = con.execute(f"""
        WITH ev AS (
            SELECT "user".id AS u, epoch(CAST("@timestamp" AS TIMESTAMPTZ)) AS ts,
                   custodes.record.count AS n, row_number() OVER () AS seq
            FROM read_json('{path}', format='newline_delimited')
        ), run AS (
            SELECT u, ts, seq, floor(ts / {r.bucket_s}) * {r.bucket_s} AS b,
                   sum(n) OVER (PARTITION BY u ORDER BY ts, seq ROWS UNBOUNDED PRECEDING) AS cum
            FROM ev
        ), ends AS (  -- the running sum at the end of each user's bucket
            SELECT u, b, max(cum) AS cum FROM run GROUP BY u, b
        )
        SELECT run.u, run.ts
        FROM run ASOF LEFT JOIN ends
          ON run.u = ends.u AND ends.b < run.b - {r.window_s - r.bucket_s}
        WHERE run.cum - coalesce(ends.cum, 0) > {r.threshold}
        ORDER BY run.u, run.ts, run.seq
    """).fetchall()
    per_user: dict[str, list[float]] = {}
    for user, ts in hits:
        per_user.setdefault(user, []).append(ts)
    alerts = sum(fold_hits(times, r) for times in per_user.values())
    seconds = time.perf_counter() - t
    events = con.execute(f"SELECT count(*) FROM read_json('{path}', format='newline_delimited')").fetchone()[0]
    return {"engine": "duckdb", "events": events, "alerts": alerts, "events_per_s": events / seconds,
            "seconds": seconds, "hits": len(hits)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("engine", choices=["bytewax-kafka", "quix-kafka", "bytewax-file", "duckdb-file", "custodes-file"])
    ap.add_argument("--all-detectors", action="store_true", help="custodes-file: every detector, not only bulk_export")
    ap.add_argument("--reference", type=Path, help="custodes-file: the reference directory (case register)")
    ap.add_argument("--broker")
    ap.add_argument("--topic")
    ap.add_argument("--events", type=int, default=0)
    ap.add_argument("--messages", type=int, default=0)
    ap.add_argument("--path", type=Path)
    args = ap.parse_args()
    if args.engine == "bytewax-kafka":
        out = bytewax_kafka(args.broker, args.topic, args.events)
    elif args.engine == "quix-kafka":
        out = quix_kafka(args.broker, args.topic, args.events, args.messages)
    elif args.engine == "bytewax-file":
        out = bytewax_file(args.path)
    elif args.engine == "custodes-file":
        out = custodes_file(args.path, args.all_detectors, args.reference)
    else:
        out = duckdb_file(args.path)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
