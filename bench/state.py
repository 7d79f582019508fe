"""Detector state and memory: bytes of per-user state (the Faust table's values, exactly what
``Pipeline.apply`` returns), table size, and peak RSS after a day of activity, for 10k and 100k users.
Each size runs in its own child process so peak RSS is its own.

    python bench/state.py                          # 10k and 100k users, 10 events per user
    python bench/state.py --users 10000 --events-per-user 40 --json bench/results/state.json
    python bench/state.py --worker --users 100000  # the real worker's peak RSS after loading them

``--worker`` starts Apache Kafka (or uses --broker), loads the same day of activity onto the input
topic (500 events per message, each on its users' home partition), runs one real Custodes worker until
it has consumed every event, and reports that process's peak RSS (VmHWM) and its RSS when ready,
before any input. State bytes there are the worker's table values as written to the changelog.
    python bench/state.py --generated synth60/   # a generated organisation (custodes generate --days 60)

``--generated DIR`` replays a generated organisation (its events, device notifications and reference
data, as ``custodes evaluate`` does) and reports the per-person state at the end of its period: the
realistic "after 60 days" figure, with every detector's baseline (hour-of-week profiles, sketches,
person risk) as long-lived as it gets.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure(users: int, per_user: int, uuid_ids: bool = False, overrides: dict | None = None) -> dict:
    from bench.replay import chunks, make_lines
    from detectors import registry
    from stream.contract.settings import load
    from stream.offline.replay import _Message
    from stream.worker.gctune import tune_for_throughput
    from stream.worker.live import LiveStates
    from stream.worker.pipeline import Pipeline
    from stream.worker.step import gather, run_batch

    tune_for_throughput()
    now = time.time()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    settings = load()
    if overrides:
        settings = settings.model_copy(update=overrides)
    pipeline = Pipeline(settings, registry.build(settings.detectors), lambda: now)
    states: dict[bytes, bytes] = {}
    live = LiveStates(settings.live_state_max_bytes)  # as the worker and replay keep them
    n = users * per_user
    started = time.perf_counter()
    # generate and apply in slices so the input lines do not dominate peak RSS; micro-batches of
    # batch_max_events as the worker and replay run them
    step = 100_000
    offset = 0
    for first in range(0, n, step):
        lines = make_lines(min(step, n - first), users, now, seed=first + 1, uuid_ids=uuid_ids, first_id=first)
        messages = [_Message(offset + i, value) for i, value in enumerate(chunks(lines))]
        offset += len(messages)
        del lines
        per_batch = max(1, settings.batch_max_events // 500)
        for at in range(0, len(messages), per_batch):
            batch = gather(pipeline, messages[at:at + per_batch], {"replay": "e"}, None)
            outcome = run_batch(pipeline, states.get, batch, live=live)
            for key, _old, new in outcome.new_states:
                if new is None:
                    states.pop(key, None)
                else:
                    states[key] = new
    seconds = time.perf_counter() - started
    sizes = sorted(len(v) for v in states.values())
    total = sum(sizes)
    return {
        "users": users, "events": n, "uuid_ids": uuid_ids, "users_with_state": len(states),
        "state_bytes_total": total, "state_bytes_per_user_mean": round(total / max(1, len(sizes))),
        "state_bytes_per_user_p50": sizes[len(sizes) // 2] if sizes else 0,
        "state_bytes_per_user_p99": sizes[int(len(sizes) * 0.99)] if sizes else 0,
        "state_bytes_per_user_max": sizes[-1] if sizes else 0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_mb": round(base_rss / 1024, 1), "seconds": round(seconds, 1),
        "live_states": len(live), "live_state_mb_estimated": round(live.bytes / 2**20, 1),
        "live_state_hits": live.hits, "live_state_misses": live.misses,
    }


def _rss_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def measure_worker(users: int, per_user: int, broker: str | None, uuid_ids: bool = False,
                   partitions: int = 4, overrides: dict | None = None) -> dict:
    """Peak RSS of one real worker that has consumed a day of activity of ``users`` users."""
    import random
    import shutil
    import tempfile

    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from bench.replay import make_lines
    from stream.contract.partitioning import home_partition
    from tests.stream.processes import Custodes

    work = Path(tempfile.mkdtemp(prefix="custodes-state-"))
    started_broker = None
    try:
        if broker is None:
            from tests.harness.kafka import start_broker

            started_broker = start_broker(work)
            broker = started_broker.bootstrap
        prefix = f"state{random.randrange(10**6)}-"
        topic = f"{prefix}custodes-audit-events"
        admin = KafkaAdminClient(bootstrap_servers=broker)
        admin.create_topics([NewTopic(topic, partitions, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=broker, linger_ms=50, batch_size=1 << 20,
                                 max_request_size=16 << 20, acks=1)
        now = time.time()
        n = users * per_user
        step = 100_000
        for first in range(0, n, step):
            pending: dict[int, list[bytes]] = {}
            for line in make_lines(min(step, n - first), users, now, seed=first + 1, uuid_ids=uuid_ids,
                                   first_id=first):
                user = line.split(b'"user":{"id":"', 1)[1].split(b'"', 1)[0].decode()
                lines = pending.setdefault(home_partition(user, partitions), [])
                lines.append(line)
                if len(lines) >= 500:
                    producer.send(topic, value=b"\n".join(lines), partition=home_partition(user, partitions))
                    lines.clear()
            for p, lines in pending.items():
                if lines:
                    producer.send(topic, value=b"\n".join(lines), partition=p)
        producer.flush()
        producer.close()
        (work / "w").mkdir()
        worker = Custodes(broker, work / "w", prefix, f"sqlite:///{work}/state.db",
                          {"partitions": partitions, "log_level": "warning", **(overrides or {})})
        proc = worker.start("worker")
        try:
            worker.wait_ready("worker", timeout_s=180)
            ready = _rss_mb(proc.pid)
            t = time.perf_counter()
            deadline = time.monotonic() + 3600

            def total(metric: str) -> float:
                """The worker answers /metrics between micro-batches: on a busy machine a large one
                can take longer than a request's timeout, so a timed-out request is retried."""
                while True:
                    try:
                        return worker.total(metric)
                    except OSError:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            raise

            while total("custodes_events_consumed_total") < n and time.monotonic() < deadline:
                time.sleep(1.0)
            seconds = time.perf_counter() - t
            time.sleep(6)  # custodes_detector_state_users is set every 5 s
            keys = total("custodes_detector_state_users")
            end = _rss_mb(proc.pid)
        finally:
            worker.stop_all()
        return {"users": users, "events": n, "uuid_ids": uuid_ids, "users_with_state": int(keys),
                "worker_rss_ready_mb": ready["VmRSS"], "worker_rss_end_mb": end["VmRSS"],
                "worker_peak_rss_mb": end["VmHWM"],
                "worker_peak_rss_over_ready_mb": round(end["VmHWM"] - ready["VmRSS"], 1),
                "seconds": round(seconds, 1)}
    finally:
        if started_broker is not None:
            started_broker.close()
        shutil.rmtree(work, ignore_errors=True)
def breakdown(values: Iterable[bytes]) -> dict[str, int]:
    """Mean bytes per person of each part of the state: ``detector:<id>`` for each detector's part
    (its JSON, key and punctuation included) and ``pipeline:<key>`` for the pipeline's own (dedupe
    window ``y``, positions ``o``, newest time ``t``)."""
    import orjson

    totals: dict[str, int] = {}
    n = 0
    for value in values:
        n += 1
        wrapper = orjson.loads(value)
        for key, part in wrapper.items():
            if key == "d" and isinstance(part, dict):
                for det, det_state in part.items():
                    name = f"detector:{det}"
                    totals[name] = totals.get(name, 0) + len(orjson.dumps({det: det_state})) - 1
            else:
                name = f"pipeline:{key}"
                totals[name] = totals.get(name, 0) + len(orjson.dumps({key: part})) - 1
    return {f"bytes_{k}": round(v / max(1, n)) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def measure_generated(directory: Path) -> dict:
    from stream.contract.settings import load
    from stream.detection.reference import detectors_for
    from stream.offline.evaluate import _merged_docs, period_end
    from stream.offline.replay import CHUNK_EVENTS, ReplayResult
    from stream.sources.file_records import canonical_bytes
    from stream.worker.gctune import tune_for_throughput
    from stream.worker.pipeline import Pipeline

    tune_for_throughput()
    as_of = period_end(directory)
    settings = load().model_copy(update={"reference_dir": directory / "reference"})
    pipeline = Pipeline(settings, detectors_for(settings)[1], lambda: as_of)
    states: dict[str, bytes] = {}
    lines: list[bytes] = []
    offset = 0
    started = time.perf_counter()

    def flush() -> None:
        nonlocal offset
        split = pipeline.split(b"\n".join(lines), "bench", 0, offset)
        for user, events in split.groups.items():
            out = pipeline.apply(user, events, states.get(user), "e", 0, offset)
            if out.state is None:
                states.pop(user, None)
            else:
                states[user] = out.state
        offset += 1
        lines.clear()

    n = 0
    for _, doc in _merged_docs(directory, ReplayResult()):
        lines.append(canonical_bytes(doc))
        n += 1
        if len(lines) >= CHUNK_EVENTS:
            flush()
    if lines:
        flush()
    sizes = sorted(len(v) for v in states.values())
    return {
        "directory": str(directory), "events": n, "users_with_state": len(states),
        **breakdown(states.values()),
        "state_bytes_per_user_mean": round(sum(sizes) / max(1, len(sizes))),
        "state_bytes_per_user_p50": sizes[len(sizes) // 2] if sizes else 0,
        "state_bytes_per_user_p99": sizes[int(len(sizes) * 0.99)] if sizes else 0,
        "state_bytes_per_user_max": sizes[-1] if sizes else 0,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, action="append", help="repeatable; default 10000 and 100000")
    ap.add_argument("--events-per-user", type=int, default=10)
    ap.add_argument("--uuid-ids", action="store_true", help="events carry UUIDs as ids (default: short ids)")
    ap.add_argument("--worker", action="store_true",
                    help="measure a real worker's RSS after consuming the workload from Apache Kafka")
    ap.add_argument("--broker", help="with --worker: use this broker instead of starting Apache Kafka")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="repeatable: a setting other than the shipped config's, e.g. live_state_max_bytes=0")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--generated", type=Path, help="a `custodes generate` directory: state at the end of its period")
    args = ap.parse_args()
    if args.generated:
        row = measure_generated(args.generated)
        for k, v in row.items():
            print(f"{k:>40}  {v:,}" if isinstance(v, int) else f"{k:>40}  {v}")
        return
    overrides = {k: _number(v) for k, _, v in (kv.partition("=") for kv in args.set)}
    if args.child:
        print(json.dumps(measure(args.users[0], args.events_per_user, args.uuid_ids, overrides)))
        return
    rows = []
    for users in args.users or [10_000, 100_000]:
        if args.worker:
            rows.append(measure_worker(users, args.events_per_user, args.broker, args.uuid_ids, overrides=overrides))
            continue
        out = subprocess.run([sys.executable, __file__, "--child", "--users", str(users),
                              "--events-per-user", str(args.events_per_user),
                              *(["--uuid-ids"] if args.uuid_ids else []),
                              *(x for kv in args.set for x in ("--set", kv))],
                             check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = list(rows[0])
    print("  ".join(f"{k:>26}" for k in ["metric"] + [str(r["users"]) for r in rows]))
    for k in keys:
        print("  ".join([f"{k:>26}"] + [f"{r[k]:>26,}" for r in rows]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
