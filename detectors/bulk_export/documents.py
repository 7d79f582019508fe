"""bulk_export's documents: the distinct documents a person downloads or exports within
``document_window_s``, per sensitivity (see the package docstring)."""


from __future__ import annotations

import math
from typing import Any

from ..alert import EVIDENCE_EVENTS_MAX
from ..event import SENSITIVITIES, Event
from ..suppression import Hit
from .state import KNOWN_SENSITIVITIES, distinct_around, hash_id


class DocumentCounting:
    """The document half of :class:`~detectors.bulk_export.detector.BulkExport` (a mixin: it uses the
    detector's ``config``)."""

    def _count_documents(self, documents: list[tuple[int, Event, str, float]], document_levels: dict[str, Any]
                         ) -> list[tuple[int, Hit, float, list[str]]] | None:
        """Count each document event (arrival order; ``at``: the newest time when it was seen) into its
        sensitivity's level ``{"document_ids": {hash: last seen}, "evidence": [ids]}``; the hits of those whose
        window holds ``min_documents`` or more distinct documents.

        At most ``2 * min_documents`` hashes are held: when full, those too old to count for any event
        still accepted go first (decided from ``at``, so batching cannot change what is held), then the
        oldest makes way for a newer one (the window holding them all was at the threshold already). A
        late event is judged by the busiest window that contains it (:func:`distinct_around`)."""
        cfg = self.config
        window_s = cfg.document_window_s
        reach = 2 * window_s + cfg.grace_s
        default_sensitivity = cfg.default_sensitivity
        thresholds = cfg.min_documents
        found: list[tuple[int, Hit, float, list[str]]] | None = None
        for i, ev, document, at in documents:
            sens = ev.sensitivity
            if sens not in KNOWN_SENSITIVITIES:
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
            h = hash_id(document)
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
            distinct = distinct_around(seen, ts, window_s, late=ts < at)
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
