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
contributing event ids for evidence (events whose window holds at least ``evidence_from`` of a
threshold, since the last in-order event whose window held less: most users, far below, hold none); an
upper bound of the records in all its buckets (an event is only checked against the window when that
bound or the number of ids held is over a threshold); plus the open alert windows
(:mod:`detectors.suppression`). The window is measured in whole buckets,
so its edge is exact to ``bucket_s``.

Documents, not only records: a document download or export (a Drive or SharePoint file, an attachment
saved) touches no records, so it also counts the *distinct documents* a person downloads or exports
(``document_kinds``) within ``document_window_s`` (5 minutes by default), per sensitivity:
``min_documents`` or more raises an alert (20 for medium, the default sensitivity of a document whose
source says none: a common public rule fires at 20 in 5 minutes). A document is its
``custodes.object.id`` (drive item, SharePoint object, file path), else its ``file.name`` when the
event reports no records (an export of records with a file name is a record export, counted above).
A failed download (``event.outcome`` failure) is not counted. The same document again is not counted
again: it is remembered with the time it was last seen. State
per sensitivity: at most twice ``min_documents`` short hashes (6 bytes) with that time, the oldest
making way when full (so an alert reports up to twice the threshold exactly, "at least" beyond), and
the last few contributing event ids for evidence (as for records).

State layout (version 3; :func:`upgrade` reads the layouts of earlier versions, so stored state
written by any release still loads and counts on)::

    {"newest": <newest counted event time>,
     "records": {<sensitivity>: {"buckets": [[<bucket start>, <records>], ...],   # sorted
                                 "record_ids": {<6-byte hash, hex>: <bucket last seen>},
                                 "evidence": [<event id>, ...],
                                 "records_at_most": <upper bound of the records in "buckets">}},
     "documents": {<sensitivity>: {"document_ids": {<hash>: <last seen>}, "evidence": [...]}},
     "open": {<key>: <open alert window (detectors.suppression.Folding's record)
                      + "records", "distinct_records" or "documents": the most seen in it>}}

Version 2 had the same content under one-letter keys (``n``, ``l`` with ``b``/``d``/``e``/``t``, ``m``
with ``d``/``e``, ``o`` with ``r``/``u``/``m``); version 1 (the first release) only the record levels,
keyed by sensitivity at the top.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from hashlib import blake2b
from operator import itemgetter
from typing import Any

from .alert import EVIDENCE_EVENTS_MAX, Alert
from .base import Clock, Detector, DetectorConfig, Needs
from .event import SENSITIVITIES, Event
from .suppression import Folding, Hit, expire_open


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
    """Also count ``message`` events that carry an attachment (``file.name``, ``custodes.media`` or
    ``email.attachments``)."""
    default_sensitivity: str = "medium"
    """Sensitivity of an event whose dataset names none (`custodes.dataset.sensitivity`)."""
    max_records: dict[str, int] = field(
        default_factory=lambda: {"low": 5000, "medium": 1000, "high": 200, "special": 50}
    )
    """Records (as events report them) tolerated per sensitivity within the window; one more raises an alert."""
    max_distinct_records: dict[str, int] = field(
        default_factory=lambda: {"low": 1000, "medium": 300, "high": 100, "special": 25}
    )
    """Distinct record ids tolerated per sensitivity within the window; one more raises an alert."""
    document_kinds: tuple[str, ...] = ("export",)
    """Activities whose documents (``custodes.object.id``, else ``file.name``) are counted."""
    document_window_s: int = 300
    """The window (seconds) distinct downloaded or exported documents are counted in."""
    min_documents: dict[str, int] = field(
        default_factory=lambda: {"low": 40, "medium": 20, "high": 10, "special": 5}
    )
    """Distinct documents within ``document_window_s`` that raise an alert (this many or more)."""
    role_max_records: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per staff role (staff directory ``role``), thresholds that replace ``max_records`` for the
    sensitivities given (``{"analyst": {"low": 20000}}``): a performance analyst's month-end reports
    are the job. The distinct-record thresholds scale by the same factor."""
    evidence_from: float = 0.25
    """An event is kept as evidence (the latest few, for the alert) when its window holds at least this
    fraction of either threshold; an in-order event whose window holds less clears it. A user far below
    every threshold holds no event ids in state. 0 keeps every counted event."""


_SENSITIVITIES = frozenset(SENSITIVITIES)
_first = itemgetter(0)


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


def _hash_id(record_id: str) -> str:
    return blake2b(record_id.encode(), digest_size=6).hexdigest()


class BulkExport(Detector):
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
            if sens not in _SENSITIVITIES:
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
                    _insert(buckets, bucket, records)
                if records > 0:
                    total += records
                for rid in ev.record_ids:  # each distinct id with the bucket it was last seen in
                    h = blake2b(rid.encode(), digest_size=6).hexdigest()  # _hash_id(rid), inlined
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
            found.sort(key=_first)  # fold in arrival order
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
                if self._expire(lvl, newest):
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
        bucket_s = self.config.bucket_s
        buckets = lvl["buckets"]
        horizon = newest - 2 * self.config.window_s - self.config.grace_s
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

    # -- documents ------------------------------------------------------------------------------

    def _count_documents(self, documents: list[tuple[int, Event, str, float]], document_levels: dict[str, Any]
                         ) -> list[tuple[int, Hit, float, list[str]]] | None:
        """Count each document event (arrival order; ``at``: the newest time when it was seen) into its
        sensitivity's level ``{"document_ids": {hash: last seen}, "evidence": [ids]}``; the hits of those whose
        window holds ``min_documents`` or more distinct documents.

        At most ``2 * min_documents`` hashes are held: when full, those too old to count for any event
        still accepted go first (decided from ``at``, so batching cannot change what is held), then the
        oldest makes way for a newer one (the window holding them all was at the threshold already). A
        late event is judged by the busiest window that contains it (:func:`_distinct_around`)."""
        cfg = self.config
        window_s = cfg.document_window_s
        reach = 2 * window_s + cfg.grace_s
        default_sensitivity = cfg.default_sensitivity
        thresholds = cfg.min_documents
        found: list[tuple[int, Hit, float, list[str]]] | None = None
        for i, ev, document, at in documents:
            sens = ev.sensitivity
            if sens not in _SENSITIVITIES:
                sens = default_sensitivity
            most = thresholds.get(sens)
            if not most:
                continue
            cap = 2 * most
            lvl = document_levels.get(sens)
            if lvl is None:
                lvl = document_levels[sens] = {"document_ids": {}, "evidence": []}
            seen: dict[str, float] = lvl["document_ids"]
            ids: list[str] = lvl["evidence"]
            ts = ev.ts
            h = _hash_id(document)
            last = seen.get(h)
            if last is None:
                if len(seen) >= cap:
                    horizon = at - reach
                    for old in [k for k, t in seen.items() if t <= horizon]:
                        del seen[old]
                if len(seen) < cap:
                    seen[h] = ts
                else:
                    oldest = min(seen, key=seen.__getitem__)
                    if seen[oldest] < ts:
                        del seen[oldest]
                        seen[h] = ts
            elif ts > last:
                seen[h] = ts
            note = most * cfg.evidence_from
            if len(seen) < note:  # far below: an in-order event ends the evidence
                if ids and ts >= at:
                    ids.clear()
                continue
            distinct = _distinct_around(seen, ts, window_s, late=ts < at)
            if distinct >= note:
                ids.append(ev.id)
                if len(ids) > EVIDENCE_EVENTS_MAX:
                    del ids[:-EVIDENCE_EVENTS_MAX]
            elif ids and ts >= at:
                ids.clear()
            if distinct >= most:
                if found is None:
                    found = []
                found.append((i, self._document_hit(sens, ev, distinct, most, distinct >= cap), at, list(ids)))
        return found

    def _expire_documents(self, document_levels: dict[str, Any], newest: float) -> None:
        """Drop the documents too old to count for any event still accepted, and empty levels."""
        horizon = newest - 2 * self.config.document_window_s - self.config.grace_s
        for sens, lvl in list(document_levels.items()):
            seen = lvl["document_ids"]
            if seen and min(seen.values()) <= horizon:
                seen = lvl["document_ids"] = {h: t for h, t in seen.items() if t > horizon}
            if not seen:
                del document_levels[sens]

    def _document_hit(self, sens: str, ev: Event, documents: int, most: int, at_cap: bool) -> Hit:
        cfg = self.config
        ratio = documents / most
        score = min(100.0, round(40 + 15 * math.log2(max(ratio, 1.0)) + 8 * SENSITIVITIES.index(sens), 1))
        return Hit(
            key=f"documents:{sens}", event=ev, score=score, title="", explanation="",
            facts={
                "sensitivity": sens,
                "document_window_s": cfg.document_window_s,
                "documents": documents,
                "min_documents": most,
                "documents_at_least": at_cap,
                "dataset": ev.dataset,
                "channel": ev.channel or ev.kind,
            },
        )

    # -- evaluation -----------------------------------------------------------------------------

    def _window(self, lvl: dict[str, Any], ev: Event, late: bool = False) -> tuple[int, int]:
        """The records and the distinct record ids of the level in the event's window; for an event that
        arrived after newer ones (``late``: re-keyed from another partition, a late shipper), the most of
        each in any window that contains it (ending at its bucket or a later one within a window), so
        arrival order does not hide a burst."""
        cfg = self.config
        at = ev.ts
        bucket_s = cfg.bucket_s
        first = math.floor(at / bucket_s) * bucket_s
        start = first - cfg.window_s + bucket_s
        buckets = lvl["buckets"]
        seen = lvl["record_ids"].values()
        total: float = 0
        for b, n in buckets:
            if b > at:
                break
            if b >= start:
                total += n
        distinct = sum(1 for t in seen if start <= t <= at)
        if late:
            last = first + cfg.window_s - bucket_s
            for end in [b for b, _ in buckets if first < b <= last]:
                begin = end - cfg.window_s + bucket_s
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


def _distinct_around(seen: dict[str, float], ts: float, window_s: float, late: bool) -> int:
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


def _insert(buckets: list[list[float]], bucket: float, records: int) -> None:
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
