"""CPU seconds of each behaviour indicator (issue 17) on bench/replay.py's workload, alone.

    python bench/indicators.py [--events 100000] [--code OTHER_TREE]

The workload's lines are split into per-user batches once (bench/replay.py's ``make_lines`` with a
fixed "now", 500 lines a message, 2,000 users); then each indicator runs over them as the engine would
run it (only the events its ``needs()`` selects, in arrival order), its state through an orjson round
trip between calls as the pipeline keeps it. Prints per indicator: CPU seconds, signals, mean state
bytes. ``--code`` runs another checkout's detectors (e.g. a ``git archive`` of the base commit) for a
side-by-side comparison: alternate the two in one session and compare ratios (the machine is shared).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

INDICATORS = ("off_hours", "first_use", "risky_destination", "media_volume", "host_ownership", "departing_user")
NOW = 1780000000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="the checkout whose detectors run (default: this one)")
    args = ap.parse_args()
    sys.path.insert(0, str(args.code))
    import orjson

    from bench.replay import chunks, make_lines
    from detectors import registry
    from stream.contract.settings import load
    from stream.worker.pipeline import Pipeline

    settings = load()
    detectors = registry.build(settings.detectors)
    pipeline = Pipeline(settings, detectors, lambda: NOW)
    batches = []
    for i, value in enumerate(chunks(make_lines(args.events, args.users, NOW, seed=1))):
        batches.append(list(pipeline.split(value, "bench", 0, i).groups.items()))
    total = 0.0
    print(f"{'indicator':<20}{'cpu_s':>8}{'signals':>9}{'state B':>9}   ({args.code})")
    for det in detectors:
        if det.id not in INDICATORS:
            continue
        needs = det.needs()
        states: dict[str, bytes] = {}
        signals = 0
        started = time.process_time()
        for groups in batches:
            for user, events in groups:
                sub = [e for e in events if needs is None or needs.wants(e)]
                if not sub:
                    continue
                kept = states.get(user)
                state, got = det.process_relevant(user, sub, orjson.loads(kept) if kept is not None else None,
                                                  lambda: NOW, None, None)
                signals += len(got)
                if state is not None:
                    states[user] = orjson.dumps(state)
        seconds = time.process_time() - started
        total += seconds
        mean = round(sum(len(v) for v in states.values()) / max(1, len(states)))
        print(f"{det.id:<20}{seconds:>8.3f}{signals:>9,}{mean:>9,}")
    print(f"{'total':<20}{total:>8.3f}")


if __name__ == "__main__":
    main()
