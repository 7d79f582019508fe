"""Replay throughput: events/s on one core through every enabled detector (``Pipeline.split`` +
``apply``, as ``custodes replay`` and the worker run them), beside a plain orjson decode of the same
lines. Generated workload: a day of activity of --users users, chunks of 500 lines per message.

    python bench/replay.py                        # 200k events, 2,000 users
    python bench/replay.py --events 1000000 --json bench/results/replay.json
    python bench/replay.py --profile              # pyinstrument profile of the pipeline run
    python bench/replay.py --peers --events 200000 --users 5000   # beside bytewax and DuckDB

``--peers``: the one-detector workload of bench/peers/ written to one file, read in --repeat alternated
rounds by ``custodes replay`` (only bulk_export enabled, and with every detector), bytewax (FileSource +
stateful_map) and DuckDB (a window query), each in its own process; the alert counts of Custodes
(bulk_export), bytewax and DuckDB must equal the rule's. Needs the bench extra.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_lines(n: int, users: int, now: float, seed: int = 1, uuid_ids: bool = False, first_id: int = 0
               ) -> list[bytes]:
    """Mixed activity over the last day: look-ups (most), exports, shares, messages, logins with geo.
    Event ids are "e<first_id + i>", or with ``uuid_ids`` random UUIDs, as many sources send (36 characters:
    their length is what the evidence ids in state cost). Each line is an exact-size copy of orjson's
    output (``owned``): kept as it is, each pins orjson's larger buffer, and 100k lines held ~300 MB
    more RSS with orjson 3.13 (bench/state.py measured the input, not the state)."""
    from stream.worker.pipeline import owned
    from tests.stream.events import export

    rng = random.Random(seed)
    start = now - 86400
    out = []
    for i in range(n):
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if uuid_ids else f"e{first_id + i}"
        user = f"user-{rng.randrange(users):06d}"
        ts = start + i * 86400 / n
        r = rng.random()
        if r < 0.7:
            doc = export(user, ts, 1, event_id=event_id, kind="record_access",
                         sensitivity=rng.choice(["low", "medium", "high"]))
            doc["custodes"]["record"] = {"ids": [f"P{rng.randrange(10**6):06d}"]}
            doc["custodes"]["case"] = {"ref": f"C{rng.randrange(1000)}"}
        elif r < 0.85:
            doc = export(user, ts, rng.randrange(1, 60), event_id=event_id)
        elif r < 0.93:
            doc = export(user, ts, rng.randrange(1, 5), event_id=event_id, kind="share",
                         destination={"domain": rng.choice(["gmail.com", "police.uk", "example.org"])})
        else:
            doc = export(user, ts, 0, event_id=event_id, kind="message",
                         message="call me on 07700 900123 about the case",
                         source={"geo": {"location": {"lat": 51.5 + rng.random(), "lon": -0.1}}})
        out.append(owned(orjson.dumps(doc)))
    return out


def chunks(lines: list[bytes], size: int = 500) -> list[bytes]:
    return [b"\n".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def run_pipeline(messages: list[bytes], now: float):
    from detectors import registry
    from stream.contract.settings import load
    from stream.offline.replay import ReplayResult, run_messages
    from stream.worker.pipeline import Pipeline

    settings = load()
    pipeline = Pipeline(settings, registry.build(settings.detectors), lambda: now)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_messages(pipeline, (ReplayResult(), iter(messages)))
    return (time.perf_counter() - started, time.process_time() - cpu, result,
            [d.id for d in pipeline.engine.detectors])


def decode_only(messages: list[bytes]) -> float:
    """Seconds to split and orjson-decode every line: the ceiling no pipeline can beat."""
    t = time.perf_counter()
    for m in messages:
        for line in m.split(b"\n"):
            orjson.loads(line)
    return time.perf_counter() - t


def peers(args: argparse.Namespace) -> dict:
    """The one-detector workload in one file, through Custodes, bytewax and DuckDB, alternated rounds."""
    import json
    import shutil
    import statistics
    import subprocess
    import tempfile

    from bench.peers.workload import make_events, parse, reference_alerts
    from bench.streaming import write_reference

    work = Path(tempfile.mkdtemp(prefix="custodes-peers-"))
    try:
        events = make_events(args.events, args.users)
        expected = reference_alerts(parse(line) for _, line in events)
        path = work / "events.jsonl"
        path.write_bytes(b"\n".join(line for _, line in events) + b"\n")
        reference = write_reference(work / "reference", args.users)
        lines = [line for _, line in events]
        del events
        decode_s = min(decode_only(chunks(lines)) for _ in range(max(1, args.repeat)))
        engines = {"custodes": ["custodes-file"],
                   "custodes-all": ["custodes-file", "--all-detectors", "--reference", str(reference)],
                   "bytewax": ["bytewax-file"], "duckdb": ["duckdb-file"]}
        rates: dict[str, list[float]] = {e: [] for e in engines}
        alerts: dict[str, list[int]] = {e: [] for e in engines}
        names = list(engines)
        for r in range(max(1, args.repeat)):
            for engine in names[r % len(names):] + names[:r % len(names)]:
                out = subprocess.run([sys.executable, str(Path(__file__).parent / "peers" / "engines.py"),
                                      *engines[engine], "--path", str(path)], capture_output=True, text=True)
                last = [x for x in out.stdout.splitlines() if x.startswith("{")]
                if not last:
                    raise SystemExit(f"{engine} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
                got = json.loads(last[-1])
                if got["events"] != args.events:
                    raise SystemExit(f"{engine} read {got['events']} of {args.events} events")
                rates[engine].append(got["events_per_s"])
                alerts[engine].append(got["alerts"])
                print(f"round {r + 1} {engine:<13} {got['events_per_s']:>10,.0f} ev/s  {got['alerts']} alerts",
                      flush=True)
        wrong = {e: a for e, a in alerts.items() if set(a) != {expected}}
        if wrong:
            raise SystemExit(f"alert counts differ from the rule's {expected}: {wrong}")

        def spread(values: list[float]) -> str:
            return " / ".join(f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
                              for v in (min(values), statistics.median(values), max(values)))

        ratio = {(a, b): [x / y for x, y in zip(rates[a], rates[b], strict=True)]
                 for a in ("custodes", "custodes-all") for b in ("bytewax", "duckdb")}
        return {
            "events": args.events, "users": args.users, "rounds": args.repeat, "alerts_each_engine": expected,
            "orjson_decode_events_per_s": round(args.events / decode_s),
            **{f"{e}_events_per_s_min_median_max": spread(v) for e, v in rates.items()},
            **{f"{a}_to_{b}_min_median_max": spread(v) for (a, b), v in ratio.items()},
            "rates": {e: [round(x) for x in v] for e, v in rates.items()},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3,
                    help="run each measurement this many times and report the best (the machine is shared)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--profile", action="store_true", help="profile the pipeline run with pyinstrument")
    ap.add_argument("--peers", action="store_true",
                    help="the one-detector workload in Custodes, bytewax and DuckDB (bench/peers/)")
    args = ap.parse_args()
    if args.peers:
        out = peers(args)
        width = max(map(len, out))
        for k, v in out.items():
            print(f"{k:<{width}}  {v:,}" if isinstance(v, int | float) else f"{k:<{width}}  {v}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
        return
    from stream.worker.gctune import tune_for_throughput

    tune_for_throughput()
    now = time.time()
    lines = make_lines(args.events, args.users, now)
    messages = chunks(lines)
    decode_s = min(decode_only(messages) for _ in range(max(1, args.repeat)))
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        seconds, cpu_s, result, detectors = run_pipeline(messages, now)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    else:
        runs = [run_pipeline(messages, now) for _ in range(max(1, args.repeat))]
        seconds, cpu_s, result, detectors = min(runs, key=lambda r: r[0])
        if len({len(r[2].alerts) for r in runs}) != 1:
            raise SystemExit("the runs raised different alerts: the pipeline is not deterministic")
    rate = args.events / seconds
    decode_rate = args.events / decode_s
    out = {
        "events": args.events, "users": args.users, "detectors": len(detectors), "runs": args.repeat,
        "pipeline_s": round(seconds, 2), "pipeline_cpu_s": round(cpu_s, 2),
        "pipeline_events_per_s_per_core": round(rate),
        "orjson_decode_events_per_s": round(decode_rate), "ratio_pipeline_to_decode": round(rate / decode_rate, 4),
        "alerts": len(result.alerts), "processed": result.processed,
        "dead_lettered": sum(result.dead_lettered.values()),
    }
    width = max(map(len, out))
    for k, v in out.items():
        print(f"{k:<{width}}  {v:,}" if isinstance(v, int | float) else f"{k:<{width}}  {v}")
    print("detectors: " + ", ".join(detectors))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(out | {"detector_ids": detectors}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
