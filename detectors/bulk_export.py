"""bulk_export: a user exporting or looking up more records than their sensitivity allows in a window.

Counts, per dataset sensitivity, the records a user touched through the configured channels within a
sliding window of event time, two ways: the records each event reports (``custodes.record.count``, or
the number of record ids), and the distinct record ids. More than the threshold for that sensitivity
raises one alert for the window; further hits while it stays over are folded into the same alert
(its ``count``) instead of raising new ones.

State per user and sensitivity (bounded): record counts in ``bucket_s`` buckets covering the window
plus grace; a map of at most ``threshold + 1`` hashed record ids with the bucket last seen; the last
few contributing event ids for evidence; the open alert's start, if any. The window is measured in
whole buckets, so its edge is exact to ``bucket_s``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .alert import EVIDENCE_EVENTS_MAX, Alert, alert_id
from .base import Clock, Detector, DetectorConfig, snapshot
from .event import SENSITIVITIES, Event


@dataclass(frozen=True)
class BulkExportConfig(DetectorConfig):
    window_s: int = 3600
    bucket_s: int = 60
    grace_s: int = 600
    """Events up to this much older than the newest seen still count (out-of-order delivery)."""
    kinds: tuple[str, ...] = ("export", "record_access")
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
    summary = "More records exported or looked up than the dataset's sensitivity allows within a window."
    Config = BulkExportConfig
    config: BulkExportConfig

    def process(
        self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
    ) -> tuple[Any | None, list[Alert]]:
        cfg = self.config
        st: dict[str, Any] = state if state is not None else {}
        touched: dict[str, list[Event]] = {}
        for ev in events:
            if ev.kind not in cfg.kinds:
                continue
            sens = ev.sensitivity if ev.sensitivity in SENSITIVITIES else cfg.default_sensitivity
            lvl = st.get(sens)
            if lvl is None:
                lvl = st[sens] = {"b": [], "d": {}, "e": [], "a": None, "n": 0.0}
            if self._add(lvl, ev, sens):
                touched.setdefault(sens, []).append(ev)
        alerts = [
            a for sens, evs in touched.items() if (a := self._evaluate(subject, sens, st[sens], evs))
        ]
        for sens in list(st):
            if self._expire(st[sens]):
                del st[sens]
        return (st or None), alerts

    # -- state updates --------------------------------------------------------------------------

    def _add(self, lvl: dict[str, Any], ev: Event, sens: str) -> bool:
        cfg = self.config
        newest = max(lvl["n"], ev.ts)
        if ev.ts <= newest - cfg.window_s - cfg.grace_s:
            return False  # too late to matter: its window has closed
        lvl["n"] = newest
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
        return True

    def _expire(self, lvl: dict[str, Any]) -> bool:
        """Drop what can no longer count; True when nothing is left."""
        cfg = self.config
        horizon = lvl["n"] - cfg.window_s - cfg.grace_s
        lvl["b"] = [b for b in lvl["b"] if b[0] + cfg.bucket_s > horizon]
        lvl["d"] = {h: t for h, t in lvl["d"].items() if t + cfg.bucket_s > horizon}
        if lvl["a"] is not None and lvl["a"][0] + cfg.window_s <= horizon:
            lvl["a"] = None
        return not lvl["b"] and lvl["a"] is None

    # -- evaluation -----------------------------------------------------------------------------

    def _window(self, lvl: dict[str, Any], at: float) -> tuple[int, int]:
        cfg = self.config
        start = math.floor(at / cfg.bucket_s) * cfg.bucket_s - cfg.window_s + cfg.bucket_s
        records = sum(n for b, n in lvl["b"] if start <= b <= at)
        distinct = sum(1 for t in lvl["d"].values() if start <= t <= at)
        return int(records), distinct

    def _evaluate(self, subject: str, sens: str, lvl: dict[str, Any], evs: list[Event]) -> Alert | None:
        cfg = self.config
        max_records = cfg.max_records.get(sens)
        max_distinct = cfg.max_distinct_records.get(sens)
        hits: list[tuple[Event, int, int]] = []
        for ev in evs:
            records, distinct = self._window(lvl, ev.ts)
            over_records = max_records is not None and records > max_records
            over_distinct = max_distinct is not None and distinct > max_distinct
            if over_records or over_distinct:
                hits.append((ev, records, distinct))
        if not hits:
            return None
        open_alert = lvl["a"]
        first_ev = hits[0][0]
        if open_alert is None or first_ev.ts >= open_alert[0] + cfg.window_s:
            # a new alert: [window start, hits so far, first_seen, last_seen, peak records, peak distinct]
            open_alert = lvl["a"] = [first_ev.ts, 0, first_ev.ts, first_ev.ts, 0, 0]
        open_alert[1] += len(hits)
        open_alert[2] = min(open_alert[2], min(ev.ts for ev, _, _ in hits))
        open_alert[3] = max(open_alert[3], max(ev.ts for ev, _, _ in hits))
        open_alert[4] = max(open_alert[4], max(r for _, r, _ in hits))
        open_alert[5] = max(open_alert[5], max(d for _, _, d in hits))
        return self._alert(subject, sens, lvl, open_alert, hits)

    def _alert(
        self,
        subject: str,
        sens: str,
        lvl: dict[str, Any],
        open_alert: list[Any],
        hits: list[tuple[Event, int, int]],
    ) -> Alert:
        cfg = self.config
        start, count, first_seen, last_seen, records, distinct = open_alert
        max_records = cfg.max_records.get(sens)
        max_distinct = cfg.max_distinct_records.get(sens)
        ratio = max(
            records / max_records if max_records else 0.0,
            distinct / max_distinct if max_distinct else 0.0,
        )
        boost = SENSITIVITIES.index(sens)
        score = min(100.0, round(40 + 15 * math.log2(max(ratio, 1.0)) + 8 * boost, 1))
        severity = "critical" if score >= 85 else "high" if score >= 65 else "medium"
        minutes = cfg.window_s // 60
        datasets = sorted({ev.dataset for ev, _, _ in hits if ev.dataset})
        where = f" from {', '.join(datasets[:3])}" if datasets else ""
        observed = []
        if max_records is not None and records > max_records:
            observed.append(f"{records:,} records (threshold {max_records:,})")
        if max_distinct is not None and distinct > max_distinct:
            observed.append(f"{distinct:,} distinct record ids (threshold {max_distinct:,})")
        explanation = (
            f"Within {minutes} minutes of event time this user exported or looked up "
            f"{' and '.join(observed)} of {sens}-sensitivity data{where}. The thresholds are set "
            f"per sensitivity in config (detectors.bulk_export). "
            + (f"{count} events over the threshold are folded into this alert." if count > 1 else "")
        ).strip()
        return Alert(
            id=alert_id(self.id, subject, f"{sens}:{start!r}"),
            detector=self.id,
            detector_version=self.version,
            severity=severity,
            score=score,
            subject=subject,
            title=f"Bulk export: {max(records, distinct):,} {sens}-sensitivity records in {minutes} min",
            explanation=explanation,
            ts=hits[-1][0].ts,
            first_seen=first_seen,
            last_seen=last_seen,
            evidence_event_ids=tuple(lvl["e"]),
            evidence=tuple(snapshot(ev) for ev, _, _ in hits[-EVIDENCE_EVENTS_MAX:]),
            count=count,
            facts={
                "sensitivity": sens,
                "window_s": cfg.window_s,
                "records": records,
                "distinct_records": distinct,
                "max_records": max_records,
                "max_distinct_records": max_distinct,
                "datasets": datasets[:10],
            },
        )
