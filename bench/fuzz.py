"""Fuzz at volume, in-process: --records mutated records (tests/resilience/fuzzgen.py: truncated,
wrong types, huge strings, deep nesting, invalid UTF-8, NaN, far-past/far-future times, byte flips)
through ``Pipeline`` exactly as the worker runs each message (batches of 200 lines). Prints counts by
outcome and dead-letter reason, and checks they reconcile (consumed = processed + dead + expired).
(The Kafka variant, 20k records through the real worker, is tests/resilience/test_fuzz.py.)

    python bench/fuzz.py                           # 1,000,000 records
    python bench/fuzz.py --records 100000 --json bench/results/fuzz.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from detectors import registry
    from stream.pipeline import Pipeline
    from stream.replay import ReplayResult
    from stream.settings import load
    from tests.resilience.fuzzgen import records

    now = time.time()
    settings = load()
    pipeline = Pipeline(settings, registry.build(settings.detectors), lambda: now)
    kinds: Counter[str] = Counter()
    result = ReplayResult()
    states: dict[str, bytes] = {}
    pipeline_s = 0.0
    batch: list[bytes] = []
    offset = 0
    crashes = 0

    def run(value: bytes) -> None:
        nonlocal pipeline_s, crashes
        t = time.perf_counter()
        try:
            split = pipeline.split(value, "fuzz", 0, offset)
            result.consumed += split.consumed
            result.expired += split.expired
            for letter in split.dead:
                result.dead_lettered[letter.reason] += 1
            for user, events in split.groups.items():
                out = pipeline.apply(user, events, states.get(user), "e", 0, offset)
                if out.state is None:
                    states.pop(user, None)
                else:
                    states[user] = out.state
                for f in pipeline.failure_letters(out.failures, "fuzz", 0, offset):
                    result.dead_lettered[f.reason] += 1
                result.processed += len(events) - len({id(f.event) for f in out.failures})
        except Exception as exc:  # noqa: BLE001 - a crash of the worker's core is what we count
            crashes += 1
            print(f"CRASH at message {offset}: {type(exc).__name__}: {exc}", file=sys.stderr)
        pipeline_s += time.perf_counter() - t

    started = time.perf_counter()
    for kind, raw in records(args.records, now, seed=args.seed):
        kinds[kind] += 1
        batch.append(raw)
        if len(batch) >= 200:
            run(b"\n".join(batch))
            batch = []
            offset += 1
    if batch:
        run(b"\n".join(batch))
    wall = time.perf_counter() - started
    dead = sum(result.dead_lettered.values())
    reconciled = result.consumed == result.processed + dead + result.expired == args.records
    out = {"records": args.records, "consumed": result.consumed, "processed": result.processed,
           "expired": result.expired, "dead_lettered": dead, "crashes": crashes, "reconciled": reconciled,
           "pipeline_s": round(pipeline_s, 1), "records_per_s": round(args.records / pipeline_s),
           "wall_s_with_generation": round(wall, 1)}
    width = 26
    for k, v in out.items():
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        print(f"{k:<{width}}  {v:,}" if numeric else f"{k:<{width}}  {v}")
    print("\ndead letters by reason:")
    for reason, n in result.dead_lettered.most_common():
        print(f"  {reason:<24}  {n:>9,}")
    print("\nrecords by mutation:")
    for kind, n in kinds.most_common():
        print(f"  {kind:<24}  {n:>9,}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(out | {"by_reason": dict(result.dead_lettered),
                                                  "by_mutation": dict(kinds)}, option=orjson.OPT_INDENT_2))
    if not reconciled or crashes:
        sys.exit(1)


if __name__ == "__main__":
    main()
