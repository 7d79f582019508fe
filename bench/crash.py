"""Crash resilience, the heavier variant of tests/resilience/test_crash.py: the worker is SIGKILLed
--kills times (default 10) at random moments while a generated stream goes through Apache Kafka, and
restarted each time; then the stored alerts are compared with offline replay of the same input.

    python bench/crash.py                      # 10 kills
    python bench/crash.py --kills 20 --feed-s 90 --json bench/results/crash.json

Starts its own Apache Kafka broker (KRaft, from the test harness's Maven cache) unless --broker is
given. Prints a table; exits 1 if any alert is missing, extra or miscounted.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--feed-s", type=float, default=60.0, help="seconds over which the stream is produced")
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--per-user", type=int, default=75)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--broker", help="use this broker instead of starting Apache Kafka")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from tests.resilience.common import FAST_GROUP_ENV, Runner
    from tests.resilience.crash_scenario import kill_and_restart

    work = Path(tempfile.mkdtemp(prefix="custodes-crash-"))
    broker = None
    runner = None
    try:
        bootstrap = args.broker
        if not bootstrap:
            from tests.harness.kafka import start_broker

            broker = start_broker(work)
            bootstrap = broker.bootstrap
        prefix = f"crash{random.randrange(10**6)}-"
        runner = Runner(bootstrap, work, prefix, f"sqlite:///{work}/custodes.db",
                        {"partitions": args.partitions, "log_level": "warning"}, extra_env=dict(FAST_GROUP_ENV))
        rng = random.Random(args.seed)
        out = kill_and_restart(runner, work, args.partitions, args.kills, args.feed_s, rng,
                               users=args.users, per_user=args.per_user)
        reconciled = runner.reconciled()
        result = {
            "kills": out.kills, "seconds": round(out.seconds, 1), "messages_produced": out.produced_messages,
            "alerts_expected": len(out.expected), "alerts_stored": len(out.got or {}),
            "missing": len(out.missing), "extra": len(out.extra), "miscounted": len(out.miscounted),
            "dead_letters": sum(out.dead_letters.values()),
            "distinct_dead_letters": sum(out.distinct_dead_letters.values()),
            "final_worker_reconciles": reconciled,
            "redelivered_messages_final_worker": runner.total("custodes_messages_redelivered_total"),
        }
        width = max(len(k) for k in result)
        for k, v in result.items():
            print(f"{k:<{width}}  {v:,}" if isinstance(v, int | float) and not isinstance(v, bool)
                  else f"{k:<{width}}  {v}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        return 0 if not (out.missing or out.extra or out.miscounted) and reconciled else 1
    finally:
        if runner is not None:
            runner.stop_all()
        if broker is not None:
            broker.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
