"""bulk_export's stored state: reading states of earlier versions, and the small helpers its
counting shares (hashed record ids, distinct ids around a time, the bucket list)."""


from __future__ import annotations

from hashlib import blake2b
from operator import itemgetter
from typing import Any

from ..event import SENSITIVITIES

KNOWN_SENSITIVITIES = frozenset(SENSITIVITIES)
first_item = itemgetter(0)


def upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """A state written by an earlier version in the layout of version 3 (see the module's docstring);
    the content is unchanged, so counting goes on exactly where it was."""
    if "open" in state:
        return state
    if "l" not in state and "n" not in state and "o" not in state and "m" not in state:
        state = {"l": {k: v for k, v in state.items() if k in SENSITIVITIES}}  # version 1
    out: dict[str, Any] = {}
    newest = state.get("n")
    if newest is not None:
        out["newest"] = newest
    records = {}
    for sens, lvl in (state.get("l") or {}).items():
        new = {"buckets": lvl.get("b", []), "record_ids": lvl.get("d", {}), "evidence": lvl.get("e", [])}
        if lvl.get("t") is not None:
            new["records_at_most"] = lvl["t"]
        records[sens] = new
    out["records"] = records
    if state.get("m"):
        out["documents"] = {sens: {"document_ids": lvl.get("d", {}), "evidence": lvl.get("e", [])}
                            for sens, lvl in state["m"].items()}
    opened = {}
    for key, rec in (state.get("o") or {}).items():
        rec = dict(rec)
        for old, name in (("r", "records"), ("u", "distinct_records"), ("m", "documents")):
            if old in rec:
                rec[name] = rec.pop(old)
        opened[key] = rec
    out["open"] = opened
    return out


def hash_id(record_id: str) -> str:
    return blake2b(record_id.encode(), digest_size=6).hexdigest()


def distinct_around(seen: dict[str, float], ts: float, window_s: float, late: bool) -> int:
    """The distinct documents in the window ending at ``ts``; for an event that arrived after newer ones
    (``late``), in the busiest window that contains it (ending at ``ts`` or at a newer document less than
    a window later), so arrival order does not hide a burst."""
    start = ts - window_s
    best = sum(1 for t in seen.values() if start < t <= ts)
    if late:
        for end in {t for t in seen.values() if ts < t < ts + window_s}:
            n = sum(1 for t in seen.values() if end - window_s < t <= end)
            if n > best:
                best = n
    return best


def insert_bucket(buckets: list[list[float]], bucket: float, records: int) -> None:
    """Add ``records`` to ``bucket`` in the sorted ``[[bucket, records], …]`` list."""
    for i in range(len(buckets) - 1, -1, -1):
        b = buckets[i]
        if b[0] == bucket:
            b[1] += records
            return
        if b[0] < bucket:
            buckets.insert(i + 1, [bucket, records])
            return
    buckets.insert(0, [bucket, records])
