"""The detectors' own CPU time, A/B: the engine calls of one replay, captured once, replayed against two trees.

    python bench/detector_calls.py --against /tmp/base                      # every detector, 100k events
    python bench/detector_calls.py --against /tmp/base --detectors person_risk --passes 10

A child process running ``--against``'s tree replays bench/replay.py's workload (same generator, a
fixed "now") and records every ``Engine.run`` call: the person, the events, the person's detector
state before the call. Then, in alternated rounds, a fresh child per tree runs those calls through an
engine holding only ``--detectors`` (their slices of each state), best of ``--passes`` passes, in CPU
seconds; the decode, dedupe and state codec of the pipeline are left out, so what is measured is the
engine and the detectors. The digest of every final alert (whole JSON, last version per id) and every
returned state must be equal between the trees, or the run stops. Both trees must read the same state
format and the same ``detectors.event.Event`` (the calls are pickled).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def capture(code: Path, events: int, users: int, now: float, out: Path) -> None:
    sys.argv = [sys.argv[0], "--code", str(code)]  # bench/replay.py imports the pipeline from there
    sys.path.insert(0, str(HERE.parent))
    import orjson
    import replay  # bench/replay.py

    from detectors.engine import Engine

    calls = []
    run = Engine.run

    def recording(self, subject, evs, state, *, pristine=None):
        calls.append((subject, list(evs), orjson.dumps(state)))
        return run(self, subject, evs, state, pristine=pristine)

    Engine.run = recording
    replay.run_pipeline(replay.chunks(replay.make_lines(events, users, now)), now)
    out.write_bytes(pickle.dumps((now, calls)))


def play(code: Path, path: Path, names: list[str], passes: int) -> dict:
    sys.path.insert(0, str(code))
    import orjson

    from detectors import registry
    from detectors.engine import Engine
    from stream.contract.settings import load

    now, calls = pickle.loads(path.read_bytes())
    detectors = [d for d in registry.build(load().detectors) if names == ["all"] or d.id in names]
    ids = {d.id for d in detectors}
    engine = Engine(detectors, lambda: now)
    best, out = None, []
    for _ in range(passes):
        states = []
        for _, _, stored in calls:
            state = orjson.loads(stored)
            states.append({k: v for k, v in state.items() if k in ids} if state else None)
        out = []
        started = time.process_time()
        for (subject, evs, _), state in zip(calls, states, strict=True):
            out.append(engine.run(subject, evs, state, pristine=lambda: None))
        spent = time.process_time() - started
        best = spent if best is None else min(best, spent)
    final, emitted = {}, 0
    for _, got, failures in out:
        if failures:
            raise SystemExit(f"{code}: detector failures {failures[:3]}")
        for a in got:
            emitted += 1
            final[a.id] = orjson.dumps(a.to_dict(), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(b"".join(final[k] for k in sorted(final))
                            + b"".join(orjson.dumps(s) for s, _, _ in out)).hexdigest()
    return {"cpu_s": best, "calls": len(calls), "emitted": emitted, "alerts": len(final), "digest": digest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", type=Path, required=True, help="the other tree (captures the calls)")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--now", type=float, default=1796302788.0)
    ap.add_argument("--detectors", default="all", help="comma-separated detector ids, or all")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--capture", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--play", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.capture:
        capture(args.against, args.events, args.users, args.now, args.capture)
        return
    if args.play:
        import orjson

        sys.stdout.write(orjson.dumps(play(args.against, args.play, args.detectors.split(","), args.passes)).decode())
        return
    import orjson

    trees = {"this": HERE.parent.parent, "other": args.against.resolve()}
    cpu: dict[str, list[float]] = {t: [] for t in trees}
    digests = set()
    with tempfile.TemporaryDirectory(prefix="custodes-calls-") as tmp:
        calls = Path(tmp) / "calls.pickle"
        subprocess.run([sys.executable, str(HERE), "--against", str(trees["other"]), "--events", str(args.events),
                        "--users", str(args.users), "--now", repr(args.now), "--capture", str(calls)], check=True)
        for r in range(args.rounds):
            for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                done = subprocess.run([sys.executable, str(HERE), "--against", str(trees[name]), "--play", str(calls),
                                       "--detectors", args.detectors, "--passes", str(args.passes)],
                                      capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
                got = orjson.loads(done.stdout)
                digests.add(got["digest"])
                if len(digests) != 1:
                    raise SystemExit(f"round {r + 1}: {name}'s alerts or states differ from the other tree's")
                cpu[name].append(got["cpu_s"])
                print(f"round {r + 1} {name:<5} {got['cpu_s']:.3f} CPU s  {got['calls']:,} calls  "
                      f"{got['emitted']:,} emitted  {got['alerts']:,} alerts  digest {got['digest'][:12]}", flush=True)

    def spread(values: list[float]) -> str:
        return " / ".join(f"{v:.3f}" for v in (min(values), statistics.median(values), max(values)))

    ratio = spread([a / b for a, b in zip(cpu["this"], cpu["other"], strict=True)])
    print(f"detectors {args.detectors}: CPU s min / median / max, this {spread(cpu['this'])}, "
          f"other {spread(cpu['other'])}; this / other per round {ratio}; same alerts and states")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps({
            "events": args.events, "users": args.users, "now": args.now, "detectors": args.detectors,
            "rounds": args.rounds, "passes": args.passes, "other_tree": str(trees["other"]),
            "this_cpu_s_min_median_max": spread(cpu["this"]), "other_cpu_s_min_median_max": spread(cpu["other"]),
            "this_to_other_cpu_min_median_max": ratio, "cpu_s": cpu, "digest": digests.pop(),
        }, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
