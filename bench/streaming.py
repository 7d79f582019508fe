"""Streaming throughput: events/s through the Custodes Faust worker on a pre-loaded topic, beside a
plain aiokafka consumer (split + orjson decode of every line) and a naive per-event Faust agent
(decode each event, one table read and write per event; no detectors) reading the same topic in the
same run.

    python bench/streaming.py                       # 200k events, batched input, Apache Kafka
    python bench/streaming.py --events 50000 --mode single    # one event per message (as Beats sends)
    python bench/streaming.py --workers 2           # scale-out: two workers in one consumer group
    python bench/streaming.py --json bench/results/streaming.json
    python bench/streaming.py --mode single --events 20000 --no-naive --profile /tmp/worker.txt   # py-spy
    python bench/streaming.py --peers --mode single --events 100000   # beside bytewax and quixstreams
    python bench/streaming.py --events 100000 --variant '' --variant 'batch_max_events=5000'   # settings A/B

``--peers``: the one-detector workload of bench/peers/ (a sliding 1-hour record count per user, an
alert over a threshold) on one topic, read in the same run by the Custodes worker (only bulk_export
enabled), bytewax and quixstreams, in --rounds alternated rounds; every engine's alert count must
equal the rule's (bench/peers/workload.py), and the table gives min/median/max of each engine's rate
and of Custodes' ratio to each peer. Needs the bench extra (pip install -e '.[bench]').

Starts its own Apache Kafka broker (KRaft, from the test harness's Maven cache) unless --broker is
given. Prints a table; --json also writes the figures. Timings are wall-clock on this machine.
``worker_peak_rss_mb``: the largest resident set of a worker process, sampled every 0.25 s while it
consumes. ``worker_cpu_us_per_event``: the workers' CPU seconds (user + system) over the same span as
the rate, per event: on a shared machine it moves less with the load than the wall-clock rate.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream.contract.partitioning import home_partition  # noqa: E402

CASES_PER_USER = 3


def case_of(user_index: int, k: int) -> str:
    return f"C{user_index:05d}-{k}"


def write_reference(directory: Path, users: int) -> Path:
    """A case register in which each user is assigned their own few cases (look-ups cite them)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "cases.jsonl").open("wb") as fh:
        for u in range(users):
            for k in range(CASES_PER_USER):
                fh.write(orjson.dumps({"case_ref": case_of(u, k), "assigned": [f"user-{u:05d}"]}) + b"\n")
    return directory


def make_events(n: int, users: int, seed: int = 1) -> list[tuple[str, bytes]]:
    """Ordinary work: look-ups under the user's own cases, some exports; one event in a thousand a
    share to a personal mail domain, which raises a third_party_transfer alert (the alert path runs too)."""
    rng = random.Random(seed)
    start = time.time() - 3600
    out = []
    for i in range(n):
        u = rng.randrange(users)
        user = f"user-{u:05d}"
        kind = "record_access" if rng.random() < 0.9 else "export"
        doc = {
            "@timestamp": datetime.fromtimestamp(start + i * 3600 / n, UTC).isoformat(),
            "event": {"id": f"ev-{i}", "action": "view" if kind == "record_access" else "download"},
            "user": {"id": user},
            "custodes": {"activity": kind, "record": {"ids": [f"P{rng.randrange(10**6):06d}"]},
                         "dataset": {"name": "persons", "sensitivity": rng.choice(["low", "medium", "high"])},
                         "case": {"ref": case_of(u, rng.randrange(CASES_PER_USER))}},
        }
        if i % 1000 == 999:
            doc["custodes"]["activity"] = "share"
            doc["destination"] = {"domain": "gmail.com"}
        out.append((user, orjson.dumps(doc)))
    return out


def preload(bootstrap: str, topic: str, events: list[tuple[str, bytes]], partitions: int, mode: str,
            batch: int) -> int:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 20,
                             max_request_size=16 << 20, acks=1)
    messages = 0
    if mode == "batched":
        pending: dict[int, list[bytes]] = {}
        for user, line in events:
            p = home_partition(user, partitions)
            lines = pending.setdefault(p, [])
            lines.append(line)
            if len(lines) >= batch:
                producer.send(topic, value=b"\n".join(pending.pop(p)), partition=p)
                messages += 1
        for p, lines in pending.items():
            producer.send(topic, value=b"\n".join(lines), partition=p)
            messages += 1
    else:
        for user, line in events:
            producer.send(topic, key=user.encode(), value=line)
            messages += 1
    producer.flush()
    producer.close()
    return messages


async def raw_consumer(bootstrap: str, topic: str, expected_events: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    seen = 0
    started = None
    try:
        while seen < expected_events:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batches:
                started = time.perf_counter()
            for records in batches.values():
                for r in records:
                    for line in r.value.split(b"\n"):
                        orjson.loads(line)
                        seen += 1
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - started)


def summarise_profile(path: Path, top: int = 25) -> str:
    """The functions with the most samples in py-spy's collapsed stacks (``--format raw``): own
    (the frame on top) and inclusive (anywhere in the stack), as shares of all samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    if not total:
        return "no samples"
    rows = [f"{total:,} samples", "own:"]
    rows += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    rows.append("inclusive:")
    rows += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(rows)


def streaming(bootstrap: str, prefix: str, workdir: Path, expected_events: int, partitions: int,
              reference: Path, workers: int = 1, profile: Path | None = None,
              edit_config: Callable[[str], str] | None = None) -> dict:
    """``workers`` Custodes workers in one consumer group (same app id and topics, own ports).
    ``profile``: sample the first worker with py-spy (collapsed stacks written there).
    ``edit_config``: rewrites the workers' config file's text (bench/peers: a fresh app id)."""
    from tests.stream.processes import Custodes

    group = []
    for i in range(workers):
        d = workdir / f"w{i}"
        d.mkdir(exist_ok=True)
        group.append(Custodes(bootstrap, d, prefix, f"sqlite:///{workdir}/bench.db",
                              {"partitions": partitions, "log_level": "warning",
                               "reference_dir": str(reference)}))
        if edit_config is not None:
            group[-1].config.write_text(edit_config(group[-1].config.read_text()))
    for c in group:
        c.start("worker")
    try:
        for c in group:
            c.wait_ready("worker", timeout_s=120)
        deadline = time.monotonic() + 1800
        spy = None
        if profile is not None:
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(group[0].procs["worker"].pid),
                                    "--format", "raw", "--rate", "250", "--nonblocking", "-o", str(profile)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def total(metric: str) -> float:
            # a worker answers /metrics between micro-batches; on a busy machine one can outlast a
            # request's timeout: retry (the loop's deadline still bounds the run)
            while True:
                try:
                    return sum(c.total(metric) for c in group)
                except OSError:
                    if any(p.poll() is not None for c in group for p in c.procs.values()) \
                            or time.monotonic() > deadline:
                        raise

        import psutil

        workers = [psutil.Process(c.procs["worker"].pid) for c in group]
        peak_rss = 0
        first = last = None
        consumed = 0.0
        while consumed < expected_events and time.monotonic() < deadline:
            consumed = total("custodes_events_consumed_total")
            peak_rss = max(peak_rss, max(w.memory_info().rss for w in workers))
            now = time.perf_counter()
            cpu = sum(sum(w.cpu_times()[:2]) for w in workers)  # user + system seconds
            if consumed and first is None:
                first = (now, consumed, cpu)
            last = (now, consumed, cpu)
            time.sleep(0.25)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        seconds = total("custodes_processing_seconds_total")
        rate = (last[1] - first[1]) / (last[0] - first[0]) if last and first and last[0] > first[0] else 0.0
        batches = total("custodes_batch_messages_count")
        cpu_per_event = (last[2] - first[2]) / (last[1] - first[1]) if last and first and last[1] > first[1] else 0.0
        return {"events_per_s": rate, "consumed": consumed, "cpu_us_per_event": cpu_per_event * 1e6,
                "cpu_in_handler_s": seconds, "alerts": total("custodes_alerts_raised_total"),
                "micro_batches": batches, "worker_peak_rss_mb": peak_rss / 2**20,
                "messages_per_micro_batch": total("custodes_batch_messages_sum") / batches if batches else 0.0}
    finally:
        for c in group:
            c.stop_all()


def naive_agent_child(bootstrap: str, topic: str, expected_events: int, partitions: int) -> None:
    """A naive Faust agent: per event, decode it and read+write the user's table entry (a count).
    Prints {"events_per_s": ...} measured from the first to the last event, then exits."""
    import json
    import logging
    import os

    import faust

    logging.disable(logging.WARNING)
    app = faust.App(f"naive{random.randrange(10**6)}", broker=f"kafka://{bootstrap}", store="memory://",
                    web_enabled=False, consumer_auto_offset_reset="earliest", topic_partitions=partitions,
                    autodiscover=False)
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")
    table = app.Table("naive-state", partitions=partitions, default=int)
    seen: dict = {"n": 0, "t0": None}

    @app.agent(source)
    async def per_event(stream):
        async for value in stream:
            for line in value.split(b"\n"):
                doc = orjson.loads(line)
                if seen["t0"] is None:
                    seen["t0"] = time.perf_counter()
                user = doc["user"]["id"]
                table[user] = table[user] + 1
                seen["n"] += 1
            if seen["n"] >= expected_events:
                rate = seen["n"] / (time.perf_counter() - seen["t0"])
                print(json.dumps({"events_per_s": rate}), flush=True)
                os._exit(0)

    from faust.worker import Worker

    Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()


def naive_agent(bootstrap: str, topic: str, expected_events: int, partitions: int) -> float:
    import json
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--naive-child", "--broker", bootstrap, "--topic", topic,
                          "--events", str(expected_events), "--partitions", str(partitions)],
                         capture_output=True, text=True, timeout=1800)
    for line in out.stdout.splitlines():
        if '{"events_per_s"' in line:  # faust's Worker may put terminal control codes before it
            return json.loads(line[line.index("{"):])["events_per_s"]
    raise RuntimeError(f"naive agent failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def distinct_alert_ids(bootstrap: str, topic: str) -> int:
    """Alerts on ``topic``, counted once per alert id (the worker re-sends an alert whose window
    gains hits in a later micro-batch; the sink keeps one row per id)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=3000)
    try:
        return len({orjson.loads(record.value)["id"] for record in consumer})
    finally:
        consumer.close()


def peer_child(engine: str, bootstrap: str, topic: str, events: int, messages: int) -> dict:
    """One peer engine's run (bench/peers/engines.py) in its own process."""
    import json

    out = subprocess.run([sys.executable, str(Path(__file__).parent / "peers" / "engines.py"), engine,
                          "--broker", bootstrap, "--topic", topic, "--events", str(events),
                          "--messages", str(messages)], capture_output=True, text=True, timeout=1800)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{engine} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")


def spread(values: list[float]) -> str:
    """min / median / max."""
    import statistics

    return " / ".join(f"{v:,.2f}" if v < 100 else f"{v:,.0f}" for v in
                      (min(values), statistics.median(values), max(values)))


def peers_run(args: argparse.Namespace, bootstrap: str, work: Path) -> dict:
    """The one-detector workload on one topic: Custodes (bulk_export only), bytewax and quixstreams,
    in alternated rounds (the order rotates each round), every alert count checked against the rule."""
    from bench.peers.workload import config_only_bulk_export, parse, reference_alerts
    from bench.peers.workload import make_events as peer_events
    from detectors.registry import CATALOG, index

    prefix = f"bench{random.randrange(10**6)}-"
    topic = f"{prefix}custodes-audit-events"
    events = peer_events(args.events, args.users)
    expected_alerts = reference_alerts(parse(line) for _, line in events)
    messages = preload(bootstrap, topic, events, args.partitions, args.mode, args.batch)
    raw = asyncio.run(raw_consumer(bootstrap, topic, args.events))
    reference = write_reference(work / "reference", args.users)
    ids = list(index(CATALOG))
    engines = ["custodes", "bytewax", "quixstreams"] + (["custodes-all"] if args.all_detectors else [])
    rates: dict[str, list[float]] = {e: [] for e in engines}
    alerts: dict[str, list[int]] = {e: [] for e in engines}
    ratios: dict[str, list[float]] = {e: [] for e in ("bytewax", "quixstreams")}
    for r in range(args.rounds):
        order = engines[r % len(engines):] + engines[:r % len(engines)]
        got: dict[str, float] = {}
        for engine in order:
            if engine.startswith("custodes"):
                app = f"{prefix}{engine}-r{r}-"

                def edit(text: str, app: str = app, only: bool = engine == "custodes") -> str:
                    text = "\n".join(f'app_id = "{app}custodes"' if line.startswith("app_id =")
                                     else f'alerts = "{app}alerts"' if line.startswith("alerts =")
                                     else line for line in text.splitlines())
                    return config_only_bulk_export(text, ids) if only else text + "\n"

                d = work / f"{engine}-r{r}"
                d.mkdir()
                out = streaming(bootstrap, prefix, d, args.events, args.partitions, reference, edit_config=edit)
                rate, n_alerts = out["events_per_s"], distinct_alert_ids(bootstrap, f"{app}alerts")
            else:
                out = peer_child("bytewax-kafka" if engine == "bytewax" else "quix-kafka", bootstrap, topic,
                                 args.events, messages)
                if out["events"] != args.events:
                    raise SystemExit(f"{engine} read {out['events']} of {args.events} events")
                rate, n_alerts = out["events_per_s"], out["alerts"]
            got[engine] = rate
            rates[engine].append(rate)
            alerts[engine].append(n_alerts)
            print(f"round {r + 1} {engine:<12} {rate:>10,.0f} ev/s  {n_alerts} alerts", flush=True)
        for peer in ratios:
            ratios[peer].append(got["custodes"] / got[peer])
    wrong = {e: a for e, a in alerts.items() if set(a) != {expected_alerts}}
    if wrong:
        raise SystemExit(f"alert counts differ from the rule's {expected_alerts}: {wrong}")
    return {
        "mode": args.mode, "events": args.events, "messages": messages, "partitions": args.partitions,
        "users": args.users, "rounds": args.rounds, "alerts_each_engine": expected_alerts,
        "raw_aiokafka_events_per_s": round(raw),
        **{f"{e}_events_per_s_min_median_max": spread(v) for e, v in rates.items()},
        **{f"custodes_to_{p}_min_median_max": spread(v) for p, v in ratios.items()},
        **({"custodes_all_to_bytewax_min_median_max": spread(
            [a / b for a, b in zip(rates["custodes-all"], rates["bytewax"], strict=True)])}
           if "custodes-all" in rates else {}),
        "custodes_to_raw_median": round(sorted(rates["custodes"])[len(rates["custodes"]) // 2] / raw, 3),
        "rates": {e: [round(x) for x in v] for e, v in rates.items()},
    }


def variants_run(args: argparse.Namespace, bootstrap: str, work: Path) -> dict:
    """The worker with each ``--variant`` of its settings (``key=value,key=value``; empty: the shipped
    config) on one pre-loaded topic, in alternated rounds (the order rotates each round), each run with a
    fresh app id (its own consumer group, table and alerts topic); every run's alert count must agree."""
    import statistics

    prefix = f"bench{random.randrange(10**6)}-"
    topic = f"{prefix}custodes-audit-events"
    events = make_events(args.events, args.users)
    preload(bootstrap, topic, events, args.partitions, args.mode, args.batch)
    reference = write_reference(work / "reference", args.users)
    variants = args.variant
    rates: dict[str, list[float]] = {v: [] for v in variants}
    rss: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    alerts: set[int] = set()
    for r in range(args.rounds):
        for i in range(len(variants)):
            variant = variants[(i + r) % len(variants)]
            app = f"{prefix}v{variants.index(variant)}-r{r}-"
            extra = [line.strip() for line in variant.split(",") if line.strip()]

            def edit(text: str, app: str = app, extra: list[str] = extra) -> str:
                out = []
                for line in text.splitlines():
                    if line.startswith("app_id ="):
                        out += [f'app_id = "{app}custodes"', *(" = ".join(x.split("=", 1)) for x in extra)]
                    elif line.split(" = ")[0] in {x.split("=", 1)[0] for x in extra}:
                        continue
                    else:
                        out.append(f'alerts = "{app}alerts"' if line.startswith("alerts =") else line)
                return "\n".join(out) + "\n"

            d = work / f"v{variants.index(variant)}-r{r}"
            d.mkdir()
            out = streaming(bootstrap, prefix, d, args.events, args.partitions, reference, edit_config=edit)
            rates[variant].append(out["events_per_s"])
            rss[variant].append(out["worker_peak_rss_mb"])
            cpu[variant].append(out["cpu_in_handler_s"])
            distinct = distinct_alert_ids(bootstrap, f"{app}alerts")  # an alert re-sent as its count grows: once
            alerts.add(distinct)
            print(f"round {r + 1} {variant or '(shipped)':<40} {out['events_per_s']:>10,.0f} ev/s  "
                  f"{out['cpu_in_handler_s']:.1f} s in micro-batches  peak RSS {out['worker_peak_rss_mb']:.0f} MB  "
                  f"{distinct} alerts", flush=True)
    if len(alerts) != 1:
        raise SystemExit(f"the variants raised different alerts: {sorted(alerts)} distinct ids")

    def mmm(values: list[float], places: int = 0) -> str:
        return " / ".join(f"{x:.{places}f}" for x in (min(values), statistics.median(values), max(values)))

    result: dict = {"mode": args.mode, "events": args.events, "users": args.users, "rounds": args.rounds,
                    "alerts_each_run": int(alerts.pop())}
    first = variants[0]
    for v in variants:
        name = v or "(shipped)"
        result[f"{name}: events/s min/median/max"] = mmm(rates[v])
        result[f"{name}: s in micro-batches min/median/max"] = mmm(cpu[v], 1)
        result[f"{name}: peak RSS MB min/median/max"] = mmm(rss[v])
        if v != first:
            ratios = [a / b for a, b in zip(rates[v], rates[first], strict=True)]
            result[f"{name}: events/s to {first or '(shipped)'} min/median/max"] = mmm(ratios, 2)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--mode", choices=["batched", "single"], default="batched")
    ap.add_argument("--batch", type=int, default=500, help="events per message in batched mode")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--broker", help="use this broker instead of starting Apache Kafka")
    ap.add_argument("--workers", type=int, default=1, help="Custodes workers in the group (scale-out)")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive per-event Faust agent")
    ap.add_argument("--peers", action="store_true",
                    help="the one-detector workload in Custodes (bulk_export only), bytewax and quixstreams")
    ap.add_argument("--rounds", type=int, default=3, help="with --peers: alternated rounds")
    ap.add_argument("--all-detectors", action="store_true",
                    help="with --peers: also the worker with every detector enabled (custodes-all)")
    ap.add_argument("--variant", action="append",
                    help="repeatable: worker settings 'key=value,key=value' ('' the shipped config), run in "
                         "--rounds alternated rounds on one topic")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--profile", type=Path, help="sample the worker with py-spy; collapsed stacks to this file")
    ap.add_argument("--naive-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args()
    if args.naive_child:
        sys.argv = [sys.argv[0], "worker"]  # faust's Worker reads its command line
        naive_agent_child(args.broker, args.topic, args.events, args.partitions)
        return

    work = Path(tempfile.mkdtemp(prefix="custodes-bench-"))
    broker = None
    try:
        bootstrap = args.broker
        if not bootstrap:
            from tests.harness.kafka import start_broker

            broker = start_broker(work)
            bootstrap = broker.bootstrap
        if args.peers or args.variant:
            result = peers_run(args, bootstrap, work) if args.peers else variants_run(args, bootstrap, work)
            width = max(len(k) for k in result)
            for k, v in result.items():
                print(f"{k:<{width}}  {v:,}" if isinstance(v, int | float) else f"{k:<{width}}  {v}")
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
            return
        prefix = f"bench{random.randrange(10**6)}-"
        topic = f"{prefix}custodes-audit-events"
        events = make_events(args.events, args.users)
        t = time.perf_counter()
        messages = preload(bootstrap, topic, events, args.partitions, args.mode, args.batch)
        load_s = time.perf_counter() - t
        raw = asyncio.run(raw_consumer(bootstrap, topic, args.events))
        naive = None if args.no_naive else naive_agent(bootstrap, topic, args.events, args.partitions)
        reference = write_reference(work / "reference", args.users)
        worker = streaming(bootstrap, prefix, work, args.events, args.partitions, reference, args.workers, args.profile)
        result = {
            "mode": args.mode, "events": args.events, "messages": messages, "partitions": args.partitions,
            "users": args.users, "workers": args.workers, "preload_s": round(load_s, 2),
            "raw_aiokafka_events_per_s": round(raw),
            "naive_faust_agent_events_per_s": round(naive) if naive else None,
            "worker_events_per_s": round(worker["events_per_s"]),
            "ratio": round(worker["events_per_s"] / raw, 3) if raw else None,
            "ratio_to_naive_agent": round(worker["events_per_s"] / naive, 3) if naive else None,
            "alerts": worker["alerts"], "micro_batches": int(worker["micro_batches"]),
            "messages_per_micro_batch": round(worker["messages_per_micro_batch"], 1),
            "worker_peak_rss_mb": round(worker["worker_peak_rss_mb"]),
            "worker_cpu_us_per_event": round(worker["cpu_us_per_event"], 1),
            "broker": "given" if args.broker else "Apache Kafka 3.9.1 (KRaft)",
        }
        width = max(len(k) for k in result)
        for k, v in result.items():
            print(f"{k:<{width}}  {v:,}" if isinstance(v, int | float) else f"{k:<{width}}  {v}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        if args.profile:
            print(summarise_profile(args.profile))
    finally:
        if broker is not None:
            broker.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
