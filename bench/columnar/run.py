"""Columnar prototype vs the product path: events/s per core (CPU seconds of this process) on the replay
bench's input (bench/replay.py's generator: a day of --users users, 500-line messages), in alternated
rounds of (a) the product path with only bulk_export and unusual_volume enabled (``Pipeline`` +
``run_messages``, as ``custodes replay``), (b) the columnar kernels, the decode into Arrow columns
included, and (c) a plain orjson decode of the lines; then the ratios. Every round asserts that (a) and
(b) give the same alerts (ids, counts, first/last seen, event time, score, severity, records and
distinct records); the columnar CPU is split by stage (decode into columns, each kernel); a last
pass checks the same on the same events with thresholds low enough to raise alerts of both detectors
(``compare.TIGHT``).

    python bench/columnar/run.py                       # 200k events, 2,000 users, 3 rounds
    python bench/columnar/run.py --events 1000000 --json bench/results/columnar.json
    python bench/columnar/run.py --all-detectors       # also the product path with every detector
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.columnar.compare import TIGHT, columnar, differences, product, settings_for  # noqa: E402
from bench.replay import chunks, make_lines  # noqa: E402


def decode_cpu(messages: list[bytes]) -> float:
    cpu = time.process_time()
    for m in messages:
        for line in m.split(b"\n"):
            orjson.loads(line)
    return time.process_time() - cpu


def product_all(messages: list[bytes], now: float) -> tuple[float, int]:
    """CPU seconds and events processed of the product path with every detector (bench/replay.py's run)."""
    from bench.replay import run_pipeline

    _, cpu, result, _ = run_pipeline(messages, now)
    return cpu, result.processed


def spread(values: list[float]) -> str:
    return " / ".join(f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
                      for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--all-detectors", action="store_true",
                    help="also time the product path with every detector enabled (as bench/replay.py)")
    args = ap.parse_args()
    from stream.worker.gctune import tune_for_throughput

    tune_for_throughput()
    now = time.time()
    messages = chunks(make_lines(args.events, args.users, now))
    settings = settings_for()
    rates: dict[str, list[float]] = {"product": [], "columnar": [], "orjson": []}
    if args.all_detectors:
        rates["product_all"] = []
    alerts = 0
    stages: dict[str, float] = {}
    names = list(rates)
    for r in range(max(1, args.repeat)):
        got = {}
        for engine in names[r % len(names):] + names[:r % len(names)]:
            if engine == "product":
                got["product"], cpu, n = product(messages, now, settings)
            elif engine == "columnar":
                got["columnar"], cpu, n = columnar(messages, now, settings, stages)
            elif engine == "product_all":
                cpu, n = product_all(messages, now)
            else:
                cpu, n = decode_cpu(messages), args.events
            if n != args.events:
                raise SystemExit(f"{engine} processed {n} of {args.events} events")
            rates[engine].append(n / cpu)
            print(f"round {r + 1} {engine:<9} {n / cpu:>12,.0f} events/s per core", flush=True)
        diff = differences(got["product"], got["columnar"])
        if diff:
            raise SystemExit("alerts differ:\n" + "\n".join(diff))
        alerts = len(got["product"])
    tight = settings_for(TIGHT)
    a, _, _ = product(messages, now, tight)
    b, _, _ = columnar(messages, now, tight)
    diff = differences(a, b)
    if diff:
        raise SystemExit("alerts differ (low thresholds):\n" + "\n".join(diff))
    by_detector = dict(sorted(Counter(x.detector for x in a.values()).items()))
    ratio = {f"{x}_to_{y}": [p / q for p, q in zip(rates[x], rates[y], strict=True)]
             for x, y in (("columnar", "product"), ("product", "orjson"), ("columnar", "orjson"),
                          *((("columnar", "product_all"),) if args.all_detectors else ()))}
    out = {
        "events": args.events, "users": args.users, "rounds": args.repeat,
        "alerts_shipped_thresholds_identical": alerts,
        "alerts_low_thresholds_identical": by_detector,
        **{f"{e}_events_per_s_per_core_min_median_max": spread(v) for e, v in rates.items()},
        **{f"{k}_min_median_max": spread(v) for k, v in ratio.items()},
        "columnar_cpu_share_by_stage": ", ".join(f"{k} {v / sum(stages.values()):.0%}" for k, v in stages.items()),
    }
    width = max(map(len, out))
    for k, v in out.items():
        print(f"{k:<{width}}  {v:,}" if isinstance(v, int) else f"{k:<{width}}  {v}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(out | {"rates": rates}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
