"""Replay throughput with 0, 100 and 1,000 Sigma rules loaded, side by side in one run.

Every enabled detector runs in all three; the Sigma unit is added with the rule sets. Rules: the 53
SigmaHQ cloud/identity rules of tests/data/sigma (M365, Okta, Google Workspace, OneLogin, Duo, as
mapped by config/sigma-pipeline.yml), the shipped rules of config/rules (those config/custodes.toml
disables stay off, as at a site: one value_count correlation and its rule run), and copies of the
SigmaHQ rules with new ids and their tested values changed (so the copies keep SigmaHQ's mix of
equality, contains and regular-expression tests but match other values) up to the count. Events:
bench/replay.py's workload (look-ups, exports, shares, messages) where every second event is also a
cloud audit event (an Okta/M365/Google Workspace ``event.action``: everyday actions, and in 1 % of them
one of the values the rules test, so some rules fire).

Throughput is events per second of the process's CPU time (``time.process_time``), not of wall time:
on a shared machine the wall clock measures the neighbours (``--wall`` for wall time).

    python bench/rules.py                       # 100k events, 2,000 users, best of 3 per rule count
    python bench/rules.py --events 200000 --json bench/results/rules.json
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path

import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TESTED = [
    # values SigmaHQ rules test (after the pipeline): rare, as attacks are
    "user.mfa.factor.deactivate", "user.mfa.factor.reset_all", "policy.lifecycle.update",
    "application.lifecycle.update", "Add domain to company.", "Suspicious inbox forwarding",
    "CHANGE_APPLICATION_SETTING", "system.api_token.create",
]
EVERYDAY = [
    "user.session.start", "user.authentication.sso", "FileDownloaded", "FileAccessed", "MailItemsAccessed",
    "Send", "UserLoggedIn", "login_success", "download", "view", "edit", "change_document_visibility",
    "FileModified", "FilePreviewed", "SearchQueryPerformed", "user.session.end",
]
PROVIDERS = ["okta", "Exchange", "SharePoint", "AzureActiveDirectory", "admin.googleapis.com", "drive"]
WALL = False
ENABLE: tuple[str, ...] = ()
"""Shipped rules to run although config/custodes.toml disables them (``--enable ID``)."""
"""Measure wall-clock time (``--wall``) instead of the process's CPU time."""
TESTED_SHARE = 0.01
"""Of the cloud events, the share whose action is one a rule tests."""


def make_events(n: int, users: int, now: float) -> list[bytes]:
    from bench.replay import make_lines

    rng = random.Random(7)
    out = []
    for i, line in enumerate(make_lines(n, users, now)):
        if i % 2:
            doc = orjson.loads(line)
            pool = TESTED if rng.random() < TESTED_SHARE else EVERYDAY
            doc.setdefault("event", {})["action"] = rng.choice(pool)
            doc["event"]["provider"] = rng.choice(PROVIDERS)
            doc["event"]["outcome"] = rng.choice(["success", "failure"])
            doc["source"] = {"ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"}
            line = orjson.dumps(doc)
        out.append(line)
    return out


def _mutate(value, n: int):
    if isinstance(value, str):
        return f"{value}-v{n}" if "%" not in value else value
    if isinstance(value, list):
        return [_mutate(v, n) for v in value]
    if isinstance(value, dict):
        return {k: _mutate(v, n) for k, v in value.items()}
    return value


def rule_dir(count: int, into: Path) -> Path:
    """``count`` rules: the shipped ones, the SigmaHQ ones, then changed copies of the SigmaHQ ones."""
    into.mkdir(parents=True, exist_ok=True)
    shipped = sorted((ROOT / "config" / "rules").glob("*.yml"))
    sigmahq = sorted(p for p in (ROOT / "tests" / "data" / "sigma" / "rules").rglob("*.yml"))
    written = 0
    for p in shipped:
        if not p.name.endswith(".test.yml"):
            text = p.read_text()
            (into / p.name).write_text(text)
            written += text.count("\ntitle:") + text.startswith("title:")
    n = 0
    while written < count:
        for p in sigmahq:
            if written >= count:
                break
            doc = yaml.safe_load(p.read_text())
            if n:
                doc["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{p.name}/{n}"))
                doc["detection"] = {k: (v if k == "condition" else _mutate(v, n))
                                    for k, v in doc["detection"].items()}
            (into / f"{n:04d}-{p.name}").write_text(yaml.safe_dump(doc))
            written += 1
        n += 1
    return into


def run(messages: list[bytes], now: float, rules: Path | None, placeholders: dict) -> tuple[float, int, int, int]:
    from detectors import registry
    from detectors.reference import ReferenceHolder
    from stream.contract.settings import Rules, load
    from stream.detection.rules import detector_for
    from stream.offline.replay import ReplayResult, run_messages
    from stream.worker.pipeline import Pipeline

    settings = load()
    if rules is None:
        settings = settings.model_copy(update={"rules": Rules(enabled=False)})
    else:
        # the shipped rules a site runs by default: those config/custodes.toml disables stay off
        disabled = tuple(r for r in settings.rules.disabled if r not in ENABLE)
        settings = settings.model_copy(update={"rules": Rules(dir=rules, placeholders=placeholders,
                                                              disabled=disabled)})
    holder = ReferenceHolder()
    detectors = registry.build(settings.detectors, holder)
    loaded = 0
    _, unit = detector_for(settings, holder)
    if unit is not None:
        detectors.append(unit)
        loaded = len(unit.rules.current)
    pipeline = Pipeline(settings, detectors, lambda: now)
    timer = time.perf_counter if WALL else time.process_time
    started = timer()
    result = run_messages(pipeline, (ReplayResult(), iter(messages)))
    seconds = timer() - started
    sigma_alerts = sum(1 for a in result.alerts.values() if a.detector == "sigma")
    return seconds, loaded, len(result.alerts), sigma_alerts


def main() -> None:
    import tempfile

    from bench.replay import chunks
    from stream.worker.gctune import tune_for_throughput

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--counts", default="0,100,1000")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per rule count (shared machine)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--wall", action="store_true", help="wall-clock time instead of the process's CPU time")
    ap.add_argument("--enable", action="append", default=[], metavar="RULE_ID",
                    help="run a shipped rule config/custodes.toml disables (e.g. a grouped correlation)")
    args = ap.parse_args()
    global WALL, ENABLE
    WALL = args.wall
    ENABLE = tuple(args.enable)
    tune_for_throughput()
    now = time.time()
    messages = chunks(make_events(args.events, args.users, now))
    placeholders = {"internal_mail_domains": ("@police.uk",), "legtimate_identifiers": ("svc-okta",)}
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {c: (rule_dir(c, Path(tmp) / str(c)) if c else None) for c in counts}
        best: dict[int, tuple[float, int, int, int]] = {}
        for _ in range(max(1, args.repeat)):
            for c in counts:  # interleaved, so a busy moment on the shared machine hits every count alike
                got = run(messages, now, dirs[c], placeholders)
                if c not in best or got[0] < best[c][0]:
                    best[c] = got
    base = args.events / best[counts[0]][0]
    rows = []
    for c in counts:
        seconds, loaded, alerts, sigma_alerts = best[c]
        rate = args.events / seconds
        rows.append({"rules_asked": c, "rules_loaded": loaded, "events_per_s": round(rate),
                     "ratio_to_first": round(rate / base, 3), "alerts": alerts, "sigma_alerts": sigma_alerts})
    print(f"{args.events:,} events, {args.users:,} users, best of {args.repeat} per count, "
          f"events per {'wall-clock' if WALL else 'CPU'} second")
    print(f"{'rules':>6} {'loaded':>7} {'events/s':>10} {'ratio':>6} {'alerts':>7} {'sigma alerts':>13}")
    for r in rows:
        print(f"{r['rules_asked']:>6} {r['rules_loaded']:>7} {r['events_per_s']:>10,} {r['ratio_to_first']:>6} "
              f"{r['alerts']:>7} {r['sigma_alerts']:>13}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps({"events": args.events, "users": args.users, "rows": rows},
                                           option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
