"""bulk_export: a user exporting or looking up more records than their sensitivity allows in a window.

Counts, per dataset sensitivity, the records a user touched through the configured channels (report
download/export, record look-up, print, removable media, web upload, share, and a message carrying
an attachment) within a sliding window of event time, two ways: the records each event reports
(``custodes.record.count``, or the number of record ids), and the distinct record ids. More than the
threshold for that sensitivity raises one alert for the window; further hits within ``suppress_s``
of its first are folded into the same alert (its ``count``) instead of raising new ones.

Events are counted and checked one at a time in arrival order, so how a stream is cut into batches
does not change the alerts. State per user and sensitivity (bounded): record counts in ``bucket_s``
buckets covering twice the window plus grace (a late event's window reaches that far back); a map
of at most ``threshold + 1`` hashed record ids with the bucket last seen; the last few
contributing event ids for evidence; plus the open alert windows (:mod:`detectors.suppression`).
The window is measured in whole buckets, so its edge is exact to ``bucket_s``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .alert import EVIDENCE_EVENTS_MAX, Alert
from .base import Clock, Detector, DetectorConfig
from .event import SENSITIVITIES, Event
from .suppression import Folding, Hit


@dataclass(frozen=True)
class BulkExportConfig(DetectorConfig):
    window_s: int = 3600
    bucket_s: int = 60
    grace_s: int = 600
    """Events up to this much older than the newest seen still count (out-of-order delivery)."""
    suppress_s: int = 3600
    """Hits within this long of an alert's first hit fold into it."""
    kinds: tuple[str, ...] = ("export", "record_access", "print", "removable_media", "web_upload", "share")
    message_attachments: bool = True
    """Also count ``message`` events that carry an attachment (``file.name`` or ``custodes.media``)."""
    default_sensitivity: str = "medium"
    max_records: dict[str, int] = field(
        default_factory=lambda: {"low": 5000, "medium": 1000, "high": 200, "special": 50}
    )
    max_distinct_records: dict[str, int] = field(
        default_factory=lambda: {"low": 1000, "medium": 300, "high": 100, "special": 25}
    )


def _hash_id(record_id: str) -> str:
    return hashlib.blake2b(record_id.encode(), digest_size=6).hexdigest()


class BulkExport(Detector):
    id = "bulk_export"
    version = 1
    summary = "More records exported, printed, copied or looked up than the dataset's sensitivity allows in a window."
    Config = BulkExportConfig
    config: BulkExportConfig

    def counts(self, ev: Event) -> bool:
        if ev.kind in self.config.kinds:
            return True
        return (ev.kind == "message" and self.config.message_attachments
                and bool(ev.file_name or ev.media))

    def process(
        self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
    ) -> tuple[Any | None, list[Alert]]:
        cfg = self.config
        st: dict[str, Any] = dict(state) if state else {}
        if state and "l" not in st:  # state written by the first release: per-sensitivity levels only
            st = {"l": {k: v for k, v in st.items() if k in SENSITIVITIES}}
        levels: dict[str, Any] = st.get("l", {})
        newest: float | None = st.get("n")
        fold = Folding(self, st.get("o"), cfg.suppress_s, cfg.window_s + cfg.suppress_s + cfg.grace_s)
        for ev in events:
            if not self.counts(ev):
                continue
            newest = ev.ts if newest is None else max(newest, ev.ts)
            if ev.ts <= newest - cfg.window_s - cfg.grace_s:
                continue  # too late to matter: its window has closed
            if not ev.records and not ev.record_ids:
                continue
            sens = ev.sensitivity if ev.sensitivity in SENSITIVITIES else cfg.default_sensitivity
            lvl = levels.get(sens)
            if lvl is None:
                lvl = levels[sens] = {"b": [], "d": {}, "e": []}
            self._add(lvl, ev, sens)
            hit = self._evaluate(sens, lvl, ev)
            if hit is not None:
                rec = fold.add(hit, newest)
                rec["r"] = max(rec.get("r", 0), hit.facts["records"])
                rec["u"] = max(rec.get("u", 0), hit.facts["distinct_records"])
                rec["e"] = list(lvl["e"])
        for sens in list(levels):
            if newest is not None and self._expire(levels[sens], newest):
                del levels[sens]
        fold.expire(newest)
        alerts = fold.alerts(subject, self._describe)
        if not levels and not fold.open:
            return None, alerts
        return {"l": levels, "o": fold.open, "n": newest}, alerts

    # -- state updates --------------------------------------------------------------------------

    def _add(self, lvl: dict[str, Any], ev: Event, sens: str) -> None:
        cfg = self.config
        bucket = math.floor(ev.ts / cfg.bucket_s) * cfg.bucket_s
        buckets: list[list[float]] = lvl["b"]
        for b in buckets:
            if b[0] == bucket:
                b[1] += ev.records
                break
        else:
            buckets.append([bucket, ev.records])
            buckets.sort()
        cap = cfg.max_distinct_records.get(sens, 0) + 1
        seen: dict[str, float] = lvl["d"]
        for rid in ev.record_ids:
            h = _hash_id(rid)
            if h in seen or len(seen) < cap:
                seen[h] = max(seen.get(h, bucket), bucket)
            else:  # full: the oldest entry makes way (the threshold was already exceeded)
                oldest = min(seen, key=seen.__getitem__)
                if seen[oldest] < bucket:
                    del seen[oldest]
                    seen[h] = bucket
        lvl["e"] = (lvl["e"] + [ev.id])[-EVIDENCE_EVENTS_MAX:]

    def _expire(self, lvl: dict[str, Any], newest: float) -> bool:
        """Drop what can no longer count; True when nothing is left. An event is still accepted up
        to ``window_s + grace_s`` behind the newest, and its window reaches ``window_s`` further back."""
        cfg = self.config
        horizon = newest - 2 * cfg.window_s - cfg.grace_s
        lvl["b"] = [b for b in lvl["b"] if b[0] + cfg.bucket_s > horizon]
        lvl["d"] = {h: t for h, t in lvl["d"].items() if t + cfg.bucket_s > horizon}
        return not lvl["b"]

    # -- evaluation -----------------------------------------------------------------------------

    def _window(self, lvl: dict[str, Any], at: float) -> tuple[int, int]:
        cfg = self.config
        start = math.floor(at / cfg.bucket_s) * cfg.bucket_s - cfg.window_s + cfg.bucket_s
        records = sum(n for b, n in lvl["b"] if start <= b <= at)
        distinct = sum(1 for t in lvl["d"].values() if start <= t <= at)
        return int(records), distinct

    def _evaluate(self, sens: str, lvl: dict[str, Any], ev: Event) -> Hit | None:
        cfg = self.config
        max_records = cfg.max_records.get(sens)
        max_distinct = cfg.max_distinct_records.get(sens)
        records, distinct = self._window(lvl, ev.ts)
        over_records = max_records is not None and records > max_records
        over_distinct = max_distinct is not None and distinct > max_distinct
        if not (over_records or over_distinct):
            return None
        ratio = max(
            records / max_records if max_records else 0.0,
            distinct / max_distinct if max_distinct else 0.0,
        )
        score = min(100.0, round(40 + 15 * math.log2(max(ratio, 1.0)) + 8 * SENSITIVITIES.index(sens), 1))
        return Hit(
            key=sens, event=ev, score=score, title="", explanation="",
            facts={
                "sensitivity": sens,
                "window_s": cfg.window_s,
                "records": records,
                "distinct_records": distinct,
                "max_records": max_records,
                "max_distinct_records": max_distinct,
                "dataset": ev.dataset,
                "channel": ev.channel or ev.kind,
            },
        )

    def _describe(self, rec: dict[str, Any], hit: Hit) -> tuple[str, str]:
        cfg = self.config
        sens = hit.facts["sensitivity"]
        records, distinct = rec.get("r", 0), rec.get("u", 0)
        hit.facts["records"], hit.facts["distinct_records"] = records, distinct
        max_records = cfg.max_records.get(sens)
        max_distinct = cfg.max_distinct_records.get(sens)
        minutes = cfg.window_s // 60
        where = f" from {hit.event.dataset}" if hit.event.dataset else ""
        via = hit.facts["channel"]
        observed = []
        if max_records is not None and records > max_records:
            observed.append(f"{records:,} records (threshold {max_records:,})")
        if max_distinct is not None and distinct > max_distinct:
            observed.append(f"{distinct:,} distinct record ids (threshold {max_distinct:,})")
        explanation = (
            f"Within {minutes} minutes of event time this user exported or looked up "
            f"{' and '.join(observed)} of {sens}-sensitivity data{where} (latest via {via}). The "
            f"thresholds are set per sensitivity in config (detectors.bulk_export)."
        )
        title = f"Bulk export: {max(records, distinct):,} {sens}-sensitivity records in {minutes} min"
        return title, explanation
