"""``custodes evaluate DIR``: run the detectors over a generated organisation and score them against
the ground truth (``DIR/truth.jsonl``, see stream/synth/generate.py).

The events (``events.jsonl``) and the device notifications (``device_notifications.jsonl``) are read
with the same normalisers as ``custodes replay``, merged in event time (both files are sorted; fed one
after the other, the second would arrive later than the detectors' grace), and fed through the same
pipeline, with ``DIR/reference`` as reference data and "now" fixed at the end of the simulated period.

Scoring: an alert is a true positive when its subject is an insider and the alert's span
(first_seen..last_seen) overlaps the insider's scenario span (start..end); any other alert is a false
positive. An insider is caught (overall) by any true-positive alert, and (per detector) by a
true-positive alert of that detector; per-detector recall counts the insiders whose scenario lists
that detector as expected. Time to detect: from the first malicious event to the first true-positive
alert's first_seen, median over the caught insiders.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from detectors.alert import Alert
from stream.contract.settings import Settings


@dataclass(frozen=True)
class Insider:
    scenario: str
    user_id: str
    start: float
    end: float
    event_ids: tuple[str, ...]
    detectors: tuple[str, ...]
    accounts: tuple[str, ...] = ()
    """Other accounts the insider used (a masquerader's colleague's): alerts on them count for the scenario."""


def read_truth(directory: Path) -> list[Insider]:
    from stream.contract.codec import parse_timestamp

    out = []
    with (directory / "truth.jsonl").open("rb") as f:
        for line in f:
            if line.strip():
                rec = orjson.loads(line)
                out.append(Insider(rec["scenario"], rec["user_id"], parse_timestamp(rec["start"]),
                                   parse_timestamp(rec["end"]), tuple(rec["event_ids"]), tuple(rec["detectors"]),
                                   tuple(rec.get("accounts", ()))))
    return out


def period_end(directory: Path) -> float:
    """The end of the simulated period (``manifest.json``), else the newest event's time."""
    from stream.contract.codec import parse_timestamp

    manifest = directory / "manifest.json"
    if manifest.is_file():
        return parse_timestamp(orjson.loads(manifest.read_bytes())["end"])
    newest = 0.0
    for _, doc in _merged_docs(directory):
        newest = max(newest, parse_timestamp(doc["@timestamp"]))
    return newest + 1


def _docs(path: Path, result: Any) -> Iterator[tuple[float, dict]]:
    from stream.contract.codec import parse_timestamp
    from stream.sources.files import read

    for record in read(path):
        if record.error is not None:
            result.consumed += 1
            result.dead_lettered[record.error.reason] += 1
            continue
        yield parse_timestamp(record.doc["@timestamp"]), record.doc


def _merged_docs(directory: Path, result: Any = None) -> Iterator[tuple[float, dict]]:
    from stream.offline.replay import ReplayResult

    result = result if result is not None else ReplayResult()
    paths = [p for p in (directory / "events.jsonl", directory / "device_notifications.jsonl") if p.is_file()]
    streams = [_docs(p, result) for p in paths]
    # key on time, then on the file's position: never compare the documents themselves
    tagged = [((ts, i, n, doc) for n, (ts, doc) in enumerate(s)) for i, s in enumerate(streams)]
    for ts, _, _, doc in heapq.merge(*tagged):
        yield ts, doc


def run_detectors(settings: Settings, directory: Path, as_of: float):
    """The replay of ``directory`` (events + device notifications, merged) -> ReplayResult."""
    from stream.detection.reference import detectors_for
    from stream.offline.replay import CHUNK_EVENTS, ReplayResult, run_messages
    from stream.sources.file_records import canonical_bytes
    from stream.worker.gctune import tune_for_throughput
    from stream.worker.pipeline import Pipeline

    tune_for_throughput()
    settings = settings.model_copy(update={"reference_dir": directory / "reference"})
    holder, detectors = detectors_for(settings)
    pipeline = Pipeline(settings, detectors, lambda: as_of, reference=holder)
    result = ReplayResult()

    def chunks() -> Iterator[bytes]:
        lines: list[bytes] = []
        for _, doc in _merged_docs(directory, result):
            lines.append(canonical_bytes(doc))
            if len(lines) >= CHUNK_EVENTS:
                yield b"\n".join(lines)
                lines = []
        if lines:
            yield b"\n".join(lines)

    return run_messages(pipeline, (result, chunks()))


def score(alerts: list[Alert], insiders: list[Insider], staff: int, days: float = 30.0,
          lookalikes: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Figures per detector and overall (see the module docstring)."""
    by_user: dict[str, list[Insider]] = {}
    for ins in insiders:
        for account in (ins.user_id, *ins.accounts):
            by_user.setdefault(account, []).append(ins)
    benign_staff = max(0, staff - len(by_user))

    def matched(a: Alert) -> Insider | None:
        for ins in by_user.get(a.subject, ()):
            if a.first_seen <= ins.end and a.last_seen >= ins.start:
                return ins
        return None

    detectors = sorted({a.detector for a in alerts} | {d for i in insiders for d in i.detectors})
    rows: dict[str, dict[str, Any]] = {}
    first_alert: dict[int, float] = {}
    tp_all = fp_all = 0
    flagged_all: set[str] = set()
    for det in detectors:
        mine = [a for a in alerts if a.detector == det]
        tp = fp = 0
        caught: dict[int, float] = {}
        flagged: set[str] = set()
        for a in mine:
            ins = matched(a)
            if ins is None:
                fp += 1
                if a.subject not in by_user:
                    flagged.add(a.subject)
                continue
            tp += 1
            k = insiders.index(ins)
            caught[k] = min(caught.get(k, a.first_seen), a.first_seen)
            first_alert[k] = min(first_alert.get(k, a.first_seen), a.first_seen)
        expected = [k for k, ins in enumerate(insiders) if det in ins.detectors]
        caught_expected = [k for k in expected if k in caught]
        delays = [max(0.0, caught[k] - insiders[k].start) for k in caught]
        rows[det] = {
            "alerts": len(mine), "true_positives": tp, "false_positives": fp,
            "precision": _ratio(tp, tp + fp),
            "insiders_expected": len(expected), "insiders_caught": len(caught_expected),
            "recall": _ratio(len(caught_expected), len(expected)),
            "also_caught": len(set(caught) - set(expected)),
            "benign_users_flagged": len(flagged),
            "benign_flagged_per_1000": round(1000 * len(flagged) / benign_staff, 1) if benign_staff else None,
            "median_time_to_detect_s": statistics.median(delays) if delays else None,
        }
        tp_all += tp
        fp_all += fp
        flagged_all |= flagged
    delays = [max(0.0, first_alert[k] - insiders[k].start) for k in first_alert]
    by_scenario: dict[str, dict[str, Any]] = {}
    for k, ins in enumerate(insiders):
        row = by_scenario.setdefault(ins.scenario, {"insiders": 0, "caught": 0, "ttd": []})
        row["insiders"] += 1
        row["caught"] += k in first_alert
        if k in first_alert:
            row["ttd"].append(max(0.0, first_alert[k] - ins.start))
    for row in by_scenario.values():
        ttd = row.pop("ttd")
        row["median_time_to_detect_s"] = statistics.median(ttd) if ttd else None
    per_30 = 30.0 / days if days > 0 else 1.0
    caught_people = len(first_alert)
    people = {
        "insiders": len(insiders), "caught": caught_people, "recall": _ratio(caught_people, len(insiders)),
        "benign_flagged": len(flagged_all),
        "precision": _ratio(caught_people, caught_people + len(flagged_all)),
        "benign_flagged_per_1000_per_30_days": round(1000 * len(flagged_all) / benign_staff * per_30, 1)
        if benign_staff else None,
        "median_time_to_detect_s": statistics.median(delays) if delays else None,
        "days": days,
    }
    indicators: dict[str, dict[str, int]] = {}
    for a in alerts:
        if a.detector != "person_risk":
            continue
        side = "insider_alerts" if matched(a) is not None else "benign_alerts"
        for row in a.facts.get("contributions", ()):
            r = indicators.setdefault(f"{row['indicator']}:{row['reason']}", {"insider_alerts": 0, "benign_alerts": 0})
            r[side] += 1
    looks: dict[str, dict[str, int]] = {}
    for trait, users in sorted((lookalikes or {}).items()):
        benign = [u for u in users if u not in by_user]
        looks[trait] = {"staff": len(benign), "flagged": sum(1 for u in benign if u in flagged_all)}
    overall = {
        "staff": staff, "insiders": len(insiders), "insiders_caught": len(first_alert),
        "recall": _ratio(len(first_alert), len(insiders)),
        "alerts": len(alerts), "true_positives": tp_all, "false_positives": fp_all,
        "precision": _ratio(tp_all, tp_all + fp_all),
        "benign_users_flagged": len(flagged_all),
        "benign_flagged_per_1000": round(1000 * len(flagged_all) / benign_staff, 1) if benign_staff else None,
        "median_time_to_detect_s": statistics.median(delays) if delays else None,
    }
    return {"overall": overall, "detectors": rows, "scenarios": by_scenario, "people": people,
            "indicators": dict(sorted(indicators.items())), "lookalikes": looks}


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def evaluate(settings: Settings, directory: Path) -> dict[str, Any]:
    """Replay ``directory`` and score it. Adds ``events``/``dead_lettered``/``as_of`` to the figures."""
    from stream.synth.render import iso

    insiders = read_truth(directory)
    as_of = period_end(directory)
    result = run_detectors(settings, directory, as_of)
    staff = sum(1 for line in (directory / "reference" / "staff.jsonl").read_bytes().splitlines()
                if line.strip() and not line.lstrip().startswith(b"#"))
    manifest = directory / "manifest.json"
    meta = orjson.loads(manifest.read_bytes()) if manifest.is_file() else {}
    figures = score(list(result.alerts.values()), insiders, staff, float(meta.get("days", 30)),
                    meta.get("lookalikes"))
    figures["replay"] = {"as_of": iso(as_of), "consumed": result.consumed, "processed": result.processed,
                         "expired": result.expired, "dead_lettered": dict(result.dead_lettered)}
    return figures


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{100 * value:.0f}%"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def report(figures: dict[str, Any]) -> str:
    """The figures as a plain-text table."""
    head = (f"{'detector':<24}{'alerts':>7}{'TP':>6}{'FP':>6}{'prec':>7}{'caught':>10}{'recall':>8}"
            f"{'benign/1k':>11}{'median TTD':>12}")
    lines = [head, "-" * len(head)]
    for det, r in figures["detectors"].items():
        lines.append(
            f"{det:<24}{r['alerts']:>7}{r['true_positives']:>6}{r['false_positives']:>6}"
            f"{_fmt(r['precision'], True):>7}{r['insiders_caught']:>5}/{r['insiders_expected']:<4}"
            f"{_fmt(r['recall'], True):>8}{_fmt(r['benign_flagged_per_1000']):>11}"
            f"{_duration(r['median_time_to_detect_s']):>12}")
    o = figures["overall"]
    lines.append("-" * len(head))
    lines.append(
        f"{'overall':<24}{o['alerts']:>7}{o['true_positives']:>6}{o['false_positives']:>6}"
        f"{_fmt(o['precision'], True):>7}{o['insiders_caught']:>5}/{o['insiders']:<4}"
        f"{_fmt(o['recall'], True):>8}{_fmt(o['benign_flagged_per_1000']):>11}"
        f"{_duration(o['median_time_to_detect_s']):>12}")
    lines.append("")
    lines.append("scenario: caught/insiders (median time to detect)  " + ", ".join(
        f"{name} {r['caught']}/{r['insiders']} ({_duration(r.get('median_time_to_detect_s'))})"
        for name, r in sorted(figures["scenarios"].items())))
    pp = figures.get("people")
    if pp:
        lines.append(
            f"people: {pp['caught']}/{pp['insiders']} insiders caught (recall {_fmt(pp['recall'], True)}), "
            f"{pp['benign_flagged']} benign flagged (person precision {_fmt(pp['precision'], True)}, "
            f"{_fmt(pp['benign_flagged_per_1000_per_30_days'])} per 1,000 staff per 30 days over {pp['days']:g} days), "
            f"median time to detect {_duration(pp['median_time_to_detect_s'])}")
    if figures.get("lookalikes"):
        lines.append("benign look-alikes flagged: " + ", ".join(
            f"{t} {r['flagged']}/{r['staff']}" for t, r in figures["lookalikes"].items()))
    if figures.get("indicators"):
        lines.append("person_risk contributions (insider/benign person alerts): " + ", ".join(
            f"{k} {r['insider_alerts']}/{r['benign_alerts']}" for k, r in figures["indicators"].items()))
    rp = figures.get("replay")
    if rp:
        lines.append(f"replayed {rp['consumed']} events as of {rp['as_of']}: {rp['processed']} processed, "
                     f"{rp['expired']} expired, {sum(rp['dead_lettered'].values())} dead-lettered; "
                     f"{o['benign_users_flagged']} of {o['staff'] - o['insiders']} benign staff flagged")
    return "\n".join(lines)
