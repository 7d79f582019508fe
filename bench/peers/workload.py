"""The one-detector workload every engine runs in the peer benchmarks, and its rule in plain Python.

Events: record look-ups (``custodes.activity = "record_access"``) of medium-sensitivity data, each
stating how many records it touched (``custodes.record.count``), by ``users`` people over ``span_s``
of event time, in time order, each citing one of the person's own cases. One person in
``heavy_every`` looks up many records at a time, so some people go over the threshold.

The rule (what Custodes' bulk_export does on these events, with every other detector disabled):
per person, the records in a sliding window of ``window_s`` measured in whole ``bucket_s`` buckets
(the event's own bucket and the ones before it, back to ``window_s``), counting the event itself;
an event whose window holds more than ``threshold`` records is a hit. A hit opens an alert unless
the person's last alert opened less than ``suppress_s`` earlier (then it folds into that alert).
The alerts are counted: each engine must raise exactly as many as :func:`reference_alerts`.

``advance`` is the per-event step the peers (bytewax, quixstreams) run in their stateful operator;
its state is JSON-able (quixstreams stores it as JSON in RocksDB and its changelog).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Rule:
    window_s: int = 3600
    bucket_s: int = 60
    threshold: int = 1000
    """bulk_export's ``max_records.medium`` in config/custodes.toml."""
    suppress_s: int = 3600


RULE = Rule()


def make_events(n: int, users: int, *, span_s: int = 6 * 3600, heavy_every: int = 25, seed: int = 1,
                now: float | None = None) -> list[tuple[str, bytes]]:
    """``n`` events as (user id, JSON line), oldest first, timestamps in whole seconds ending a minute
    before ``now`` (so none is in the future and all are inside the retention window)."""
    rng = random.Random(seed)
    end = int(now if now is not None else datetime.now(UTC).timestamp()) - 60
    start = end - span_s
    out = []
    for i in range(n):
        u = rng.randrange(users)
        user = f"user-{u:05d}"
        records = rng.randint(1, 400) if u % heavy_every == 0 else rng.randint(1, 40)
        ts = start + (i * span_s) // n
        doc = {
            "@timestamp": datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z"),
            "event": {"id": f"ev-{i}", "action": "view"},
            "user": {"id": user},
            "custodes": {"activity": "record_access", "record": {"count": records},
                         "dataset": {"name": "persons", "sensitivity": "medium"},
                         # one of the user's own cases (bench/streaming.py write_reference), so with
                         # every detector enabled need_to_know stays quiet
                         "case": {"ref": f"C{u:05d}-{rng.randrange(3)}"}},
        }
        out.append((user, memoryview(orjson.dumps(doc)).tobytes()))  # exact size: see stream.worker.pipeline.owned
    return out


def parse(line: bytes) -> tuple[str, float, int]:
    """(user id, event time as epoch seconds, records) of one event line: what a peer reads."""
    doc = orjson.loads(line)
    ts = datetime.fromisoformat(doc["@timestamp"]).timestamp()
    return doc["user"]["id"], ts, doc["custodes"]["record"]["count"]


def advance(state: dict[str, Any] | None, ts: float, records: int, rule: Rule = RULE
            ) -> tuple[dict[str, Any], bool]:
    """One person's next event (in time order): the new state and whether it opens an alert.
    State: ``b`` [[bucket start, records], ...] oldest first, only buckets still in a window; ``a`` the
    time of the last alert's first hit (or None)."""
    if state is None:
        state = {"b": [], "a": None}
    buckets: list[list[float]] = state["b"]
    bucket = (ts // rule.bucket_s) * rule.bucket_s
    if buckets and buckets[-1][0] == bucket:
        buckets[-1][1] += records
    else:
        buckets.append([bucket, records])
    first = bucket - rule.window_s + rule.bucket_s
    while buckets[0][0] < first:
        del buckets[0]
    in_window = sum(n for _, n in buckets)
    if in_window <= rule.threshold:
        return state, False
    opened = state["a"]
    if opened is not None and ts < opened + rule.suppress_s:
        return state, False
    state["a"] = ts
    return state, True


def reference_alerts(events: Iterable[tuple[str, float, int]], rule: Rule = RULE) -> int:
    """Alerts raised by ``events`` ((user, ts, records), each user's in time order)."""
    states: dict[str, dict[str, Any]] = {}
    alerts = 0
    for user, ts, records in events:
        states[user], opened = advance(states.get(user), ts, records, rule)
        alerts += opened
    return alerts


def fold_hits(hit_times: Iterable[float], rule: Rule = RULE) -> int:
    """Alerts from one person's hits (event times of events over the threshold, ascending): a hit
    opens an alert unless the last one opened less than ``suppress_s`` earlier. DuckDB's window query
    finds the hits; this sequential fold (each alert depends on the one before) is done here."""
    alerts = 0
    opened: float | None = None
    for ts in hit_times:
        if opened is None or ts >= opened + rule.suppress_s:
            opened = ts
            alerts += 1
    return alerts


def only_bulk_export(detectors: dict[str, dict[str, Any]], ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """A detectors config with every detector in ``ids`` disabled but bulk_export."""
    out = {k: dict(v) for k, v in detectors.items()}
    for det_id in ids:
        out.setdefault(det_id, {})["enabled"] = det_id == "bulk_export"
    return out


def config_only_bulk_export(text: str, ids: Iterable[str]) -> str:
    """config/custodes.toml's text with every detector in ``ids`` but bulk_export disabled (a section
    missing from the file is added), for a worker process."""
    lines = text.splitlines()
    section = None
    seen = set()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]")
            if section.startswith("detectors."):
                seen.add(section.split(".", 1)[1])
        elif section and section.startswith("detectors.") and stripped.replace(" ", "").startswith("enabled="):
            det_id = section.split(".", 1)[1]
            if det_id != "bulk_export":
                lines[i] = "enabled = false"
    for det_id in ids:
        if det_id not in seen and det_id != "bulk_export":
            lines += [f"[detectors.{det_id}]", "enabled = false"]
    return "\n".join(lines) + "\n"
