"""The bulk_export detector: records per sensitivity in a sliding window (see the package docstring)."""


from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from functools import cached_property
from hashlib import blake2b
from typing import Any

from ..alert import EVIDENCE_EVENTS_MAX, Alert
from ..base import Clock, Detector, Needs
from ..event import SENSITIVITIES, Event
from ..suppression import Folding, Hit, expire_open
from .config import BulkExportConfig
from .documents import DocumentCounting
from .state import KNOWN_SENSITIVITIES, first_item, insert_bucket, upgrade


class BulkExport(DocumentCounting, Detector):
    id = "bulk_export"
    version = 2
    """2: also counts distinct documents downloaded or exported (``min_documents``)."""
    summary = ("More records exported, printed, copied or looked up than the dataset's sensitivity allows in a "
               "window, or more distinct documents downloaded or exported in a few minutes.")
    Config = BulkExportConfig
    config: BulkExportConfig

    def needs(self) -> Needs:
        """Its newest event time counts only the events it counts, so a batch with none is skipped."""
        return Needs(kinds=self._counted | ({"message"} if self.config.message_attachments else set()))

    @cached_property
    def _kinds(self) -> frozenset[str]:
        return frozenset(self.config.kinds)

    @cached_property
    def _document_kinds(self) -> frozenset[str]:
        return frozenset(self.config.document_kinds)

    @cached_property
    def _counted(self) -> frozenset[str]:
        """Activities counted as records or as documents."""
        return self._kinds | self._document_kinds

    @cached_property
    def _limits(self) -> dict[str, tuple[float, float, int, float, float]]:
        """Per sensitivity: (max_records, max_distinct_records, how many ids to hold, and the records and
        distinct ids from which an event is evidence), inf where not set."""
        return self._limits_of(*self._thresholds(None))

    def _thresholds(self, role: str | None) -> tuple[dict[str, int], dict[str, int]]:
        """``max_records`` and ``max_distinct_records`` for a person of ``role`` (``role_max_records``)."""
        cfg = self.config
        override = cfg.role_max_records.get(role) if role is not None and cfg.role_max_records else None
        if not override:
            return cfg.max_records, cfg.max_distinct_records
        records, distinct = dict(cfg.max_records), dict(cfg.max_distinct_records)
        for sens, most in override.items():
            base = cfg.max_records.get(sens)
            records[sens] = int(most)
            if base and sens in distinct:
                distinct[sens] = max(1, round(distinct[sens] * int(most) / base))
        return records, distinct

    def _limits_for(self, subject: str) -> dict[str, tuple[float, float, int, float, float]]:
        if not self.config.role_max_records:
            return self._limits
        person = self.ref.person(subject)
        role = person.role if person is not None else None
        if role not in self.config.role_max_records:
            return self._limits
        cache = self.__dict__.setdefault("_role_limits", {})
        limits = cache.get(role)
        if limits is None:
            limits = cache[role] = self._limits_of(*self._thresholds(role))
        return limits

    def _limits_of(self, max_records: dict[str, int], max_distinct_records: dict[str, int]
                   ) -> dict[str, tuple[float, float, int, float, float]]:
        cfg = self.config
        out = {}
        for s in {*SENSITIVITIES, cfg.default_sensitivity}:
            records, distinct = max_records.get(s), max_distinct_records.get(s)
            most_records = math.inf if records is None else records
            most_ids = math.inf if distinct is None else distinct
            out[s] = (most_records, most_ids, (distinct or 0) + 1,
                      most_records * cfg.evidence_from, most_ids * cfg.evidence_from)
        return out

    def counts(self, ev: Event) -> bool:
        if ev.kind in self._counted:
            return True
        return (ev.kind == "message" and self.config.message_attachments
                and bool(ev.file_name or ev.media or ev.attachment_count))

    def process(
        self, subject: str, events: Sequence[Event], state: Any | None, clock: Clock
    ) -> tuple[Any | None, list[Alert]]:
        cfg = self.config
        st: dict[str, Any] = state if state else {}
        if state and "open" not in st:  # written by an earlier version: field names of version 3
            st = upgrade(st)
        levels: dict[str, Any] | None = st.get("records")
        if levels is None:
            levels = st["records"] = {}
        newest: float | None = st.get("newest")
        kinds = self._kinds
        counted = self._counted
        document_kinds = self._document_kinds
        attachments = cfg.message_attachments
        late = cfg.window_s + cfg.grace_s
        late_document = cfg.document_window_s + cfg.grace_s
        default_sensitivity = cfg.default_sensitivity
        # 1. the counted events, with the newest time when each was seen, by sensitivity
        groups: dict[str, list[tuple[int, Event, int, float]]] = {}
        documents: list[tuple[int, Event, str, float]] | None = None
        top = -math.inf if newest is None else newest
        for i, ev in enumerate(events):
            kind = ev.kind
            if kind not in counted and not (
                    kind == "message" and attachments and (ev.file_name or ev.media or ev.attachment_count)):
                continue
            ts = ev.ts
            if ts > top:
                top = ts
            if kind in document_kinds and ts > top - late_document and ev.outcome != "failure":
                document = ev.object_id
                if document is None and ev.record_count is None and not ev.record_ids:
                    document = ev.file_name
                if document:
                    if documents is None:
                        documents = []
                    documents.append((i, ev, document, top))
            if ts <= top - late:
                continue  # too late to matter: its window has closed
            if kind not in kinds and kind != "message":
                continue  # counted as a document only
            records = ev.record_count
            if records is None:
                records = len(ev.record_ids)
                if not records:
                    continue
            elif not records and not ev.record_ids:
                continue
            sens = ev.sensitivity
            if sens not in KNOWN_SENSITIVITIES:
                sens = default_sensitivity
            group = groups.get(sens)
            if group is None:
                groups[sens] = [(i, ev, records, top)]
            else:
                group.append((i, ev, records, top))
        if top != -math.inf:
            newest = top
        # 2. per sensitivity: count them (buckets, distinct ids, evidence), and check the window of
        # those that may be over a threshold
        found: list[tuple[int, Hit, float, list[str]]] | None = None
        floor = math.floor
        bucket_s = cfg.bucket_s
        limits = self._limits_for(subject)
        for sens, group in groups.items():
            lvl = levels.get(sens)
            if lvl is None:
                lvl = levels[sens] = {"buckets": [], "record_ids": {}, "evidence": [], "records_at_most": 0}
            buckets: list[list[Any]] = lvl["buckets"]
            seen: dict[str, float] = lvl["record_ids"]
            ids: list[str] = lvl["evidence"]
            total = lvl.get("records_at_most")
            if total is None:  # a level written before its upper bound was kept
                total = sum([n for _, n in buckets if n > 0])
            most_records, most_ids, cap, note_records, note_ids = limits[sens]
            last = buckets[-1] if buckets else None
            last_bucket = last[0] if last is not None else -math.inf
            for i, ev, records, at in group:
                bucket = floor(ev.ts / bucket_s) * bucket_s
                if bucket == last_bucket:
                    last[1] += records  # type: ignore[index]
                elif bucket > last_bucket:
                    last = [bucket, records]
                    buckets.append(last)
                    last_bucket = bucket
                else:  # sorted: an older bucket goes in its place
                    insert_bucket(buckets, bucket, records)
                if records > 0:
                    total += records
                for rid in ev.record_ids:  # each distinct id with the bucket it was last seen in
                    h = blake2b(rid.encode(), digest_size=6).hexdigest()  # hash_id(rid), inlined
                    t = seen.get(h)
                    if t is None:
                        if len(seen) < cap:
                            seen[h] = bucket
                        else:  # full: the oldest entry makes way (the threshold was already exceeded)
                            oldest = min(seen, key=seen.__getitem__)
                            if seen[oldest] < bucket:
                                del seen[oldest]
                                seen[h] = bucket
                    elif bucket > t:
                        seen[h] = bucket
                if total < note_records and len(seen) < note_ids:
                    # far below every threshold (the whole level is): an in-order event ends the evidence
                    if ids and ev.ts >= at:
                        ids.clear()
                    continue
                in_window, distinct = self._window(lvl, ev, late=ev.ts < at)
                if in_window >= note_records or distinct >= note_ids:
                    ids.append(ev.id)
                elif ids and ev.ts >= at:
                    ids.clear()
                if in_window > most_records or distinct > most_ids:
                    if found is None:
                        found = []
                    found.append((i, self._hit(sens, ev, in_window, distinct, most_records, most_ids), at,
                                  ids[-EVIDENCE_EVENTS_MAX:]))
            if len(ids) > EVIDENCE_EVENTS_MAX:
                del ids[:-EVIDENCE_EVENTS_MAX]
            lvl["records_at_most"] = total
        document_levels: dict[str, Any] | None = st.get("documents")
        if documents:
            if document_levels is None:
                document_levels = st["documents"] = {}
            document_hits = self._count_documents(documents, document_levels)
            if document_hits:
                found = document_hits if found is None else found + document_hits
        alerts: list[Alert] = []
        opened = st.get("open")
        if found:
            found.sort(key=first_item)  # fold in arrival order
            if opened is None:
                opened = st["open"] = {}
            fold = Folding(self, opened, cfg.suppress_s, cfg.window_s + cfg.suppress_s + cfg.grace_s)
            for _, hit, at, evidence in found:
                rec = fold.add(hit, at)
                facts = hit.facts
                if "documents" in facts:
                    rec["documents"] = max(rec.get("documents", 0), facts["documents"])
                else:
                    rec["records"] = max(rec.get("records", 0), facts["records"])
                    rec["distinct_records"] = max(rec.get("distinct_records", 0), facts["distinct_records"])
                rec["e"] = evidence
        if newest is not None:
            horizon = newest - 2 * cfg.window_s - cfg.grace_s
            for sens, lvl in list(levels.items()):
                buckets = lvl["buckets"]
                if buckets:
                    if buckets[0][0] + bucket_s > horizon:
                        continue  # sorted: nothing to drop
                    if not buckets[-1][0] + bucket_s > horizon:
                        del levels[sens]  # everything goes
                        continue
                if _expired(lvl, horizon, bucket_s):
                    del levels[sens]
            if opened:
                expire_open(opened, newest, max(cfg.window_s + cfg.suppress_s + cfg.grace_s, cfg.suppress_s))
            if document_levels:
                self._expire_documents(document_levels, newest)
                if not document_levels:
                    del st["documents"]
        if found:
            alerts = fold.alerts(subject, self._describe)
        if not levels and not opened and not document_levels:
            return None, alerts
        st["open"] = opened if opened is not None else {}
        st["newest"] = newest
        return st, alerts

    # -- state updates --------------------------------------------------------------------------

    def _expire(self, lvl: dict[str, Any], newest: float) -> bool:
        """Drop what can no longer count; True when nothing is left. An event is still accepted up
        to ``window_s + grace_s`` behind the newest, and its window reaches ``window_s`` further back.
        Every hashed id's bucket is one of the level's buckets, so when no bucket goes no id does."""
        cfg = self.config
        return _expired(lvl, newest - 2 * cfg.window_s - cfg.grace_s, cfg.bucket_s)

    # -- documents ------------------------------------------------------------------------------

    def _window(self, lvl: dict[str, Any], ev: Event, late: bool = False) -> tuple[int, int]:
        """The records and the distinct record ids of the level in the event's window; for an event that
        arrived after newer ones (``late``: re-keyed from another partition, a late shipper), the most of
        each in any window that contains it (ending at its bucket or a later one within a window), so
        arrival order does not hide a burst."""
        cfg = self.config
        at = ev.ts
        bucket_s = cfg.bucket_s
        window_s = cfg.window_s
        first = math.floor(at / bucket_s) * bucket_s
        start = first - window_s + bucket_s
        buckets = lvl["buckets"]
        seen = lvl["record_ids"].values()
        total: float = 0
        for b, n in buckets:
            if b > at:
                break
            if b >= start:
                total += n
        distinct = len([t for t in seen if start <= t <= at])
        if late:
            last = first + window_s - bucket_s
            for end in [b for b, _ in buckets if first < b <= last]:
                begin = end - window_s + bucket_s
                n = sum([c for b, c in buckets if begin <= b <= end])
                if n > total:
                    total = n
                d = sum(1 for t in seen if begin <= t <= end)
                if d > distinct:
                    distinct = d
        return int(total), distinct

    def _hit(self, sens: str, ev: Event, records: int, distinct: int, most_records: float = math.inf,
             most_ids: float = math.inf) -> Hit:
        """The hit of an event whose window holds ``records`` records and ``distinct`` ids, over a
        threshold (``most_records``/``most_ids``: the person's, inf where not set)."""
        cfg = self.config
        max_records = None if most_records == math.inf else int(most_records)
        max_distinct = None if most_ids == math.inf else int(most_ids)
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
        if "documents" in hit.facts:
            documents = hit.facts["documents"] = rec.get("documents", hit.facts["documents"])
            most = hit.facts["min_documents"]
            how_many = f"at least {documents:,}" if documents >= 2 * most else f"{documents:,}"
            minutes = cfg.document_window_s // 60
            where = f" from {hit.event.dataset}" if hit.event.dataset else ""
            return (
                f"Bulk download: {how_many} {sens}-sensitivity documents in {minutes} min",
                f"Within {minutes} minutes of event time this user downloaded or exported {how_many} "
                f"distinct documents of {sens}-sensitivity data{where} (threshold {hit.facts['min_documents']:,}; "
                f"latest via {hit.facts['channel']}). The same document again is not counted twice. The "
                f"thresholds are set per sensitivity in config (detectors.bulk_export.min_documents).",
            )
        records, distinct = rec.get("records", 0), rec.get("distinct_records", 0)
        hit.facts["records"], hit.facts["distinct_records"] = records, distinct
        max_records = hit.facts["max_records"]
        max_distinct = hit.facts["max_distinct_records"]
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


def _expired(lvl: dict[str, Any], horizon: float, bucket_s: float) -> bool:
    """:meth:`BulkExport._expire` with the horizon (``newest - 2 x window_s - grace_s``) computed by
    the caller: drop every bucket ``b`` with ``b + bucket_s <= horizon`` and the ids last seen in them;
    True when nothing is left."""
    buckets = lvl["buckets"]
    size = len(buckets)
    # the first bucket to keep: b + bucket_s > horizon (monotone in b; bisect, then exact)
    i = bisect_left(buckets, [horizon - bucket_s])
    while i < size and not buckets[i][0] + bucket_s > horizon:
        i += 1
    while i > 0 and buckets[i - 1][0] + bucket_s > horizon:
        i -= 1
    if i == size:
        return True
    if i:
        gone = buckets[i - 1][0]  # every id last seen in a dropped bucket, and no other
        total = lvl.get("records_at_most")
        if total is not None:  # still at least the sum of the positive counts left
            for _, n in buckets[:i]:
                if n > 0:
                    total -= n
            lvl["records_at_most"] = total
        del buckets[:i]
        seen = lvl["record_ids"]
        if seen and min(seen.values()) <= gone:
            lvl["record_ids"] = {h: t for h, t in seen.items() if t > gone}
    return False
