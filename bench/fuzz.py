"""Fuzz at volume, in-process: --records mutated records (tests/resilience/fuzzgen.py: truncated,
wrong types, huge strings, deep nesting, invalid UTF-8, NaN, far-past/far-future times, byte flips,
control characters in identifiers and in free text, duplicate keys, lines over the size limit, exact
re-sends) through ``Pipeline`` exactly as the worker runs each message (batches of 200 lines). Every
record must get the outcome its mutation may have (its dead-letter reason, processed, a recognised
re-send, expired), and the counts must reconcile (consumed = processed + dead + expired). Then
--alerts fuzzed alert messages go through the sink into a store (SQLite in a temporary directory, or
--database-url): each stored or dead-lettered with the reason it must have, and the store holding
exactly the stored ones. Exits 1 on any crash or mismatch. (The Kafka variant, 20k records through
the real worker, is tests/resilience/test_fuzz.py.)

    python bench/fuzz.py                           # 1,000,000 records, 10,000 alerts
    python bench/fuzz.py --records 100000 --json bench/results/fuzz.json
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--database-url", help="the store for the alerts (default: SQLite in a temporary directory)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from prometheus_client import CollectorRegistry

    from detectors import registry
    from stream.contract.settings import load
    from stream.store.alerts import AlertStore
    from stream.store.sink import Sink
    from stream.worker.pipeline import Pipeline
    from tests.resilience.fuzzgen import alert_records, per_record, records

    now = time.time()
    settings = load()
    pipeline = Pipeline(settings, registry.build(settings.detectors), lambda: now)
    kinds: Counter[str] = Counter()
    generate_s = 0.0

    def generated():
        nonlocal generate_s
        source = records(args.records, now, seed=args.seed)
        while True:
            t = time.perf_counter()
            f = next(source, None)
            generate_s += time.perf_counter() - t
            if f is None:
                return
            kinds[f.kind] += 1
            yield f

    crashes = 0
    started = time.perf_counter()
    try:
        by_kind, wrong, totals = per_record(pipeline, generated())
    except Exception as exc:  # noqa: BLE001 - a crash of the worker's core is what we count
        crashes += 1
        print(f"CRASH: {type(exc).__name__}: {exc}", file=sys.stderr)
        by_kind, wrong, totals = Counter(), [], {"consumed": 0, "processed": 0, "expired": 0, "duplicates": 0,
                                                 "dead_lettered": Counter()}
    pipeline_s = time.perf_counter() - started - generate_s
    dead = sum(totals["dead_lettered"].values())
    reconciled = totals["consumed"] == totals["processed"] + dead + totals["expired"] == args.records

    logging.getLogger("custodes.sink").setLevel(logging.CRITICAL)  # one line per dead letter otherwise
    alerts = alert_records(args.alerts, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        store = AlertStore(args.database_url or f"sqlite:///{tmp}/fuzz.db")
        sink_registry = CollectorRegistry()
        sink = Sink(settings, registry=sink_registry, store=store)
        started = time.perf_counter()
        try:
            alert_by_kind, alert_wrong = sink_outcomes_safe(sink, alerts)
        finally:
            sink_s = time.perf_counter() - started
            store.dispose()
    out = {"records": args.records, "consumed": totals["consumed"], "processed": totals["processed"],
           "duplicates": totals["duplicates"], "expired": totals["expired"], "dead_lettered": dead,
           "crashes": crashes, "reconciled": reconciled, "records_with_unexpected_outcome": len(wrong),
           "pipeline_s": round(pipeline_s, 1), "records_per_s": round(args.records / pipeline_s),
           "generate_s": round(generate_s, 1), "alerts": args.alerts,
           "alerts_stored": sum(n for (_, got), n in alert_by_kind.items() if got == "stored"),
           "alerts_dead_lettered": sum(n for (_, got), n in alert_by_kind.items() if got != "stored"),
           "alerts_with_unexpected_outcome": len(alert_wrong), "sink_s": round(sink_s, 1)}
    width = 32
    for k, v in out.items():
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        print(f"{k:<{width}}  {v:,}" if numeric else f"{k:<{width}}  {v}")
    print("\ndead letters by reason:")
    for reason, n in totals["dead_lettered"].most_common():
        print(f"  {reason:<24}  {n:>9,}")
    print("\nrecords by mutation -> outcome:")
    for (kind, got), n in sorted(by_kind.items()):
        print(f"  {kind:<16} -> {got:<22} {n:>9,}")
    print("\nalerts by mutation -> outcome:")
    for (kind, got), n in sorted(alert_by_kind.items()):
        print(f"  {kind:<18} -> {got:<16} {n:>7,}")
    for line in (wrong + alert_wrong)[:20]:
        print("UNEXPECTED:", line, file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(
            out | {"by_reason": dict(totals["dead_lettered"]), "by_mutation": dict(kinds),
                   "by_mutation_outcome": {f"{k} -> {g}": n for (k, g), n in sorted(by_kind.items())},
                   "alerts_by_mutation_outcome": {f"{k} -> {g}": n for (k, g), n in sorted(alert_by_kind.items())}},
            option=orjson.OPT_INDENT_2))
    if not reconciled or crashes or wrong or alert_wrong:
        sys.exit(1)


def sink_outcomes_safe(sink, alerts):
    from tests.resilience.fuzzgen import sink_outcomes

    try:
        return sink_outcomes(sink, alerts)
    except Exception as exc:  # noqa: BLE001 - a crash of the sink is what we count
        return Counter(), [f"sink CRASH: {type(exc).__name__}: {exc}"]


if __name__ == "__main__":
    main()
